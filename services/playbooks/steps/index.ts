/**
 * The playbook step types (issue 19): one runner per type key, and CEL/Liquid for the engine.
 *
 * ```ts
 * const runners = createStepRunners({ pool, vault, templates, clock, webhooks: { allowPrivateTargets: false } });
 * const output = await runners.query({ resource: 'integrations', filter: { health: 'unhealthy' } }, scope, ctx);
 * ```
 *
 * Runners render the Liquid in their own specs (`{{ steps.x.output }}` in a webhook body or a
 * message); the engine passes each spec as written. A runner throws `StepError` (code,
 * retryable, retryAfterMs); the engine's retry policy decides what happens next.
 */
import type pg from 'pg';
import type { Clock } from '../../../runtime/clock.js';
import { communicateRunner, type CommunicateOptions, type CredentialSource } from './communicate.js';
import { evaluateRunner } from './evaluate.js';
import { queryRunner } from './query.js';
import { templateRunner, type TemplateSource } from './template.js';
import type { StepRunner, StepType } from './types.js';
import { webhookRunner, type SecretVault } from './webhook.js';

export interface StepRunnerDeps {
  /** Concord's database: `query` reads through a whitelist of resources. */
  pool: pg.Pool;
  /** The credential vault (`services/integrations/vault.ts`): connector credentials and webhook signing secrets. */
  vault: CredentialSource & SecretVault;
  /** The template library (`services/playbooks/templates.ts`). */
  templates: TemplateSource;
  clock: Clock;
  /** The outbound rules of webhooks (config.events: `allowPrivateTargets`, `webhookTimeoutMs`). */
  webhooks: { allowPrivateTargets: boolean; timeoutMs?: number };
  /** Provider endpoints of `communicate` (the real ones by default). */
  providers?: CommunicateOptions;
}

/** One runner per step type. */
export function createStepRunners(deps: StepRunnerDeps): Record<StepType, StepRunner> {
  const now = () => deps.clock.now();
  return {
    query: queryRunner(deps.pool),
    evaluate: evaluateRunner(),
    template: templateRunner(deps.templates, now),
    communicate: communicateRunner(deps.vault, deps.providers),
    webhook: webhookRunner(deps.vault, { allowPrivateTargets: deps.webhooks.allowPrivateTargets, timeoutMs: deps.webhooks.timeoutMs ?? 10_000, now }),
  };
}

export { createExpressions } from './expressions.js';
export { CEL_LIMITS, CelCode } from './cel.js';
export { LIQUID_LIMITS, TemplateCode } from './liquid.js';
export { CHANNELS, CommunicateCode, type CommunicateOptions } from './communicate.js';
export { INTEGRATION_HEALTH, PLATFORM_TENANT, QUERY_LIMITS, QueryCode, RESOURCES, parseQuery } from './query.js';
export { PDF_MAX_BYTES } from './template.js';
export { signingSecret, WEBHOOK_VAULT_SERVICE, WebhookCode } from './webhook.js';
export { textToPdf } from './pdf.js';
export * from './types.js';
