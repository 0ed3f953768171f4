import { newSecret, webhookHeaders } from '../../events/signing.js';
import { postWebhook } from '../../events/webhook.js';
import type { CredentialSecret } from '../../integrations/vault.js';
import { renderSpec } from './render.js';
import { StepError, type StepRunner } from './types.js';

/**
 * The `webhook` step: one signed HTTP POST (Standard Webhooks: `webhook-id`,
 * `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`) with the outbound rules of
 * cross-integration events (`services/events/webhook.ts`): HTTP(S) only, no private, loopback or
 * link-local target (checked on the address actually connected to, every redirect too) unless
 * `WEBHOOK_ALLOW_PRIVATE_TARGETS`.
 *
 * ```yaml
 * webhook: { url: "https://hooks.example.com/partners", method: POST, body: { text: "{{ steps.message.output }}" } }
 * webhook: { url: ..., headers: { x-team: partners }, secret: crm-hooks }
 * ```
 *
 * `webhook-id` is the step's idempotency key, the same on every retry and after a restart, so
 * the receiver dedupes on it as Standard Webhooks intends; it is also sent as `Idempotency-Key`.
 * The signing secret is the tenant's (`secret` names one; `default` otherwise), kept in the vault
 * as service `playbook-webhook`; the first call makes it when there is none.
 */

export const WEBHOOK_VAULT_SERVICE = 'playbook-webhook';
export const WebhookCode = { Invalid: 'WEBHOOK_INVALID', Failed: 'WEBHOOK_FAILED', Refused: 'WEBHOOK_REFUSED', Aborted: 'WEBHOOK_ABORTED' } as const;

/** What the runner needs of the vault. */
export interface SecretVault {
  get(ref: { tenantId: string; service: string; connectionId: string }): Promise<{ secret: CredentialSecret }>;
  put(ref: { tenantId: string; service: string; connectionId: string }, secret: CredentialSecret, o?: { expectedVersion?: number }): Promise<unknown>;
}

export interface WebhookOptions {
  allowPrivateTargets: boolean;
  timeoutMs: number;
  now: () => number;
}

/** The vault's tenant for a playbook's tenant (the platform's playbooks use `platform`). */
export const vaultTenant = (tenantId: string) => tenantId || 'platform';

const isNotFound = (err: unknown) => (err as { code?: string }).code === 'NOT_FOUND';

/** The tenant's signing secret `name`, made (and stored) on first use; concurrent first uses agree on one. */
export async function signingSecret(vault: SecretVault, tenantId: string, name: string): Promise<string> {
  const ref = { tenantId: vaultTenant(tenantId), service: WEBHOOK_VAULT_SERVICE, connectionId: name };
  try {
    return (await vault.get(ref)).secret.secret!;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    await vault.put(ref, { secret: newSecret() }, { expectedVersion: 0 });
  } catch (err) {
    if ((err as { code?: string }).code !== 'CREDENTIAL_VERSION_CONFLICT') throw err;
  }
  return (await vault.get(ref)).secret.secret!;
}

const RESERVED = new Set(['webhook-id', 'webhook-timestamp', 'webhook-signature', 'content-type', 'content-length', 'host', 'connection', 'transfer-encoding', 'idempotency-key']);

interface WebhookSpec {
  url?: unknown;
  method?: unknown;
  headers?: unknown;
  body?: unknown;
  secret?: unknown;
}

export function webhookRunner(vault: SecretVault, o: WebhookOptions): StepRunner {
  return async (spec, scope, ctx) => {
    const raw = spec as WebhookSpec | null;
    if (!raw || typeof raw !== 'object') throw new StepError(WebhookCode.Invalid, 'webhook must be { url, method?, headers?, body?, secret? }', false);
    const s = await renderSpec(raw, scope, ctx.signal);
    if (typeof s.url !== 'string') throw new StepError(WebhookCode.Invalid, 'webhook.url must be a string', false);
    const method = s.method === undefined ? 'POST' : String(s.method).toUpperCase();
    if (method !== 'POST') throw new StepError(WebhookCode.Invalid, 'webhook.method must be POST (a signed delivery is a POST, as Standard Webhooks defines it)', false);
    const headers: Record<string, string> = {};
    if (s.headers !== undefined) {
      if (!s.headers || typeof s.headers !== 'object' || Array.isArray(s.headers)) throw new StepError(WebhookCode.Invalid, 'webhook.headers must be an object of name: value', false);
      for (const [k, v] of Object.entries(s.headers)) {
        const name = k.toLowerCase();
        if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name) || RESERVED.has(name)) throw new StepError(WebhookCode.Invalid, `webhook.headers.${k} is not a header a playbook may set`, false);
        if (typeof v !== 'string' || /[\r\n]/.test(v)) throw new StepError(WebhookCode.Invalid, `webhook.headers.${k} must be a one-line string`, false);
        headers[name] = v;
      }
    }
    const secretName = s.secret === undefined ? 'default' : s.secret;
    if (typeof secretName !== 'string' || !/^[\w.-]{1,100}$/.test(secretName)) throw new StepError(WebhookCode.Invalid, 'webhook.secret must name a signing secret (letters, digits, ".", "-", "_")', false);
    const body = JSON.stringify(s.body ?? {});
    const secret = await signingSecret(vault, ctx.tenantId, secretName);
    // Standard Webhooks ids are opaque strings; ours is the idempotency key, made header-safe
    const webhookId = `msg_${Buffer.from(ctx.idempotencyKey).toString('base64url')}`;
    const signed = webhookHeaders(secret, webhookId, Math.floor(o.now() / 1000), body);
    const outcome = await postWebhook(s.url, { ...headers, ...signed, 'idempotency-key': ctx.idempotencyKey }, body, {
      timeoutMs: o.timeoutMs,
      allowPrivate: o.allowPrivateTargets,
      now: o.now,
      signal: ctx.signal,
    });
    const target = safeTarget(s.url);
    switch (outcome.kind) {
      case 'delivered':
        ctx.log(`delivered to ${target}: HTTP ${outcome.statusCode}`, { status: outcome.statusCode, webhookId });
        return { status: outcome.statusCode, webhookId };
      case 'aborted':
        throw new StepError(WebhookCode.Aborted, outcome.error ?? 'aborted', true);
      default: {
        const f = outcome.failure;
        ctx.log(`webhook to ${target} failed: ${outcome.error}`, { status: outcome.statusCode, retryable: outcome.kind === 'retry' });
        const code = f?.code === 'FORBIDDEN' && outcome.statusCode === null ? WebhookCode.Refused : (f?.code ?? WebhookCode.Failed);
        throw new StepError(code, `webhook to ${target}: ${outcome.error ?? 'failed'}`, outcome.kind === 'retry', outcome.retryAfterMs ?? undefined);
      }
    }
  };
}

/** The URL without its query string or user info (either may carry a token). */
function safeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

