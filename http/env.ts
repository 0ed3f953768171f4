import { createRoute, OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
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

const BEARER = [{ bearerAuth: [] }];

/**
 * The route definer of one OpenAPI tag: `createRoute` with `tags` and `security` filled in
 * (a bearer token, or none for a `public` route), so a route file names its tag once and each
 * route states only what is its own.
 *
 * @example
 * const route = routes('Operators');
 * app.openapi(route({ method: 'get', path: '/', summary: 'Search actors', responses }), handler);
 */
export function routes(tag: string, o: { public?: boolean } = {}) {
  const security = o.public ? [] : BEARER;
  return <P extends string, R extends Omit<RouteConfig, 'path' | 'tags' | 'security'> & { path: P }>(config: R) =>
    createRoute({ tags: [tag], security, ...config });
}
