import { OpenAPIHono } from '@hono/zod-openapi';
import type { Logger } from '../runtime/logger.js';
import type { Principal } from '../services/common/principal.js';
import { DomainCode, DomainError } from '../services/common/errors.js';
import type { Services } from '../services/index.js';

/** What every handler finds on the context. */
export interface Env {
  Variables: {
    requestId: string;
    log: Logger;
    principal: Principal;
    services: Services;
  };
}

/**
 * A router whose validation failures become one VALIDATION_FAILED problem (with zod's issues),
 * raised into the app's single `onError`.
 */
export function router(): OpenAPIHono<Env> {
  return new OpenAPIHono<Env>({
    defaultHook: (result) => {
      if (!result.success) {
        throw new DomainError(DomainCode.ValidationFailed, `invalid ${result.target}`, {
          target: result.target,
          issues: result.error.issues.map((i) => ({ path: i.path.map(String), code: i.code, message: i.message })),
        });
      }
    },
  });
}
