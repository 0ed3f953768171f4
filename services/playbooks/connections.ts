import type pg from 'pg';
import { checkTeamsUrl } from '../../connectors/teams/index.js';
import { recordAudit } from '../common/audit.js';
import { DomainCode, DomainError, notFound } from '../common/errors.js';
import { isPlatform, type Principal } from '../common/principal.js';
import type { CredentialInfo, CredentialVault } from '../integrations/vault.js';
import { newSecret } from '../events/signing.js';
import { isVaultError, VaultCode } from '../integrations/errors.js';
import { SALESFORCE_HOSTS, type Provider } from './steps/communicate.js';
import { vaultTenant, WEBHOOK_VAULT_SERVICE } from './steps/webhook.js';

/**
 * The connections `communicate` steps send through, and the secrets `webhook` steps sign with:
 * stored in the vault under the tenant, never answered back (a webhook signing secret is
 * answered once, when it is made). `PUT /api/partnerships/connections/{provider}/{account}`,
 * `GET /api/partnerships/connections`, `DELETE .../{provider}/{account}`,
 * `POST /api/partnerships/webhook-secrets/{name}`.
 */

/** Per provider: the secret fields (all required) and the metadata fields (required ones first). */
export const CONNECTION_FIELDS: Record<Provider, { secret: string[]; metadata: string[]; requiredMetadata: string[] }> = {
  sendgrid: { secret: ['apiKey'], metadata: ['from'], requiredMetadata: [] },
  mailgun: { secret: ['apiKey'], metadata: ['domain', 'from'], requiredMetadata: ['domain'] },
  slack: { secret: ['botToken'], metadata: [], requiredMetadata: [] },
  teams: { secret: ['webhookUrl'], metadata: [], requiredMetadata: [] },
  twilio: { secret: ['authToken'], metadata: ['accountSid', 'from', 'messagingServiceSid', 'keySid'], requiredMetadata: ['accountSid'] },
  salesforce: { secret: ['clientId', 'clientSecret'], metadata: ['instanceUrl'], requiredMetadata: ['instanceUrl'] },
};

export interface ChannelConnection {
  provider: string;
  account: string;
  tenantId: string | null;
  metadata: Record<string, unknown>;
  version: number;
  updatedAt: string;
}

/** A server without credential keys cannot store a secret: 503, as for an unconfigured provider (never a 500). */
async function stored<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isVaultError(err, VaultCode.NotConfigured)) throw new DomainError(DomainCode.ProviderNotConfigured, 'no credentials key is configured (CREDENTIALS_KEYS): secrets cannot be stored');
    throw err;
  }
}

const invalid = (field: string, message: string) => new DomainError(DomainCode.ValidationFailed, message, { field });

function tenantFor(p: Principal, tenantId: string | undefined): string {
  if (tenantId !== undefined) {
    if (!isPlatform(p)) throw new DomainError(DomainCode.Forbidden, 'only operators may name another tenant', { field: 'tenantId' });
    return tenantId;
  }
  return isPlatform(p) ? vaultTenant('') : p.tenantId!;
}

const view = (i: CredentialInfo): ChannelConnection => ({
  provider: i.service,
  account: i.connectionId,
  tenantId: i.tenantId === vaultTenant('') ? null : i.tenantId,
  metadata: i.metadata,
  version: i.version,
  updatedAt: i.updatedAt,
});

export class ChannelConnections {
  constructor(
    private readonly pool: pg.Pool,
    private readonly vault: CredentialVault,
  ) {}

  async put(principal: Principal, provider: string, account: string, body: { secret?: Record<string, unknown>; metadata?: Record<string, unknown>; tenantId?: string }, requestId?: string | null): Promise<ChannelConnection> {
    if (!Object.hasOwn(CONNECTION_FIELDS, provider)) throw notFound('provider', provider);
    if (!/^[\w.@-]{1,100}$/.test(account)) throw invalid('account', 'account must be 1 to 100 letters, digits or . @ - _');
    const f = CONNECTION_FIELDS[provider as Provider];
    const secret: Record<string, string> = {};
    for (const k of Object.keys(body.secret ?? {})) if (!f.secret.includes(k)) throw invalid(`secret.${k}`, `a ${provider} connection's secret has ${f.secret.join(', ')}`);
    for (const k of f.secret) {
      const v = body.secret?.[k];
      if (typeof v !== 'string' || v === '' || v.length > 4096) throw invalid(`secret.${k}`, `secret.${k} is required (a non-empty string)`);
      secret[k] = v;
    }
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(body.metadata ?? {})) {
      if (!f.metadata.includes(k)) throw invalid(`metadata.${k}`, `a ${provider} connection's metadata has ${f.metadata.join(', ') || 'no fields'}`);
      if (typeof v !== 'string' || v === '' || v.length > 500) throw invalid(`metadata.${k}`, `metadata.${k} must be a non-empty string`);
      metadata[k] = v;
    }
    for (const k of f.requiredMetadata) if (!metadata[k]) throw invalid(`metadata.${k}`, `metadata.${k} is required for ${provider}`);
    if (provider === 'teams') {
      try {
        checkTeamsUrl(new URL(secret.webhookUrl!));
      } catch {
        throw invalid('secret.webhookUrl', 'secret.webhookUrl must be an HTTPS Teams incoming-webhook URL');
      }
    }
    if (provider === 'salesforce') {
      let u: URL | undefined;
      try {
        u = new URL(metadata.instanceUrl!);
      } catch {
        u = undefined;
      }
      if (!u || u.protocol !== 'https:' || !SALESFORCE_HOSTS.some((h) => u.hostname.toLowerCase().endsWith(h))) {
        throw invalid('metadata.instanceUrl', `metadata.instanceUrl must be https on ${SALESFORCE_HOSTS.join(', ')}`);
      }
    }
    const tenant = tenantFor(principal, body.tenantId);
    const info = await stored(() => this.vault.put({ tenantId: tenant, service: provider, connectionId: account }, secret, { metadata }));
    await recordAudit(this.pool, { principal, action: 'connection.put', objectType: 'playbook_connection', objectId: `${tenant}/${provider}/${account}`, before: null, after: { metadata, version: info.version }, at: info.updatedAt, requestId: requestId ?? null });
    return view(info);
  }

  async list(principal: Principal, tenantId?: string): Promise<ChannelConnection[]> {
    const tenant = tenantFor(principal, tenantId);
    return (await this.vault.list(tenant)).filter((i) => Object.hasOwn(CONNECTION_FIELDS, i.service)).map(view);
  }

  async delete(principal: Principal, provider: string, account: string, tenantId?: string, requestId?: string | null): Promise<void> {
    if (!Object.hasOwn(CONNECTION_FIELDS, provider)) throw notFound('provider', provider);
    const tenant = tenantFor(principal, tenantId);
    if (!(await this.vault.delete({ tenantId: tenant, service: provider, connectionId: account }))) throw notFound('connection', `${provider}/${account}`);
    await recordAudit(this.pool, { principal, action: 'connection.delete', objectType: 'playbook_connection', objectId: `${tenant}/${provider}/${account}`, before: null, after: null, at: new Date().toISOString(), requestId: requestId ?? null });
  }

  /** Makes (or replaces) a webhook signing secret and answers it: the only time it is shown. */
  async rotateWebhookSecret(principal: Principal, name: string, tenantId?: string, requestId?: string | null): Promise<{ name: string; secret: string; version: number }> {
    if (!/^[\w.-]{1,100}$/.test(name)) throw invalid('name', 'name must be 1 to 100 letters, digits or . - _');
    const tenant = tenantFor(principal, tenantId);
    const secret = newSecret();
    const info = await stored(() => this.vault.put({ tenantId: tenant, service: WEBHOOK_VAULT_SERVICE, connectionId: name }, { secret }));
    await recordAudit(this.pool, { principal, action: 'webhookSecret.rotate', objectType: 'playbook_webhook_secret', objectId: `${tenant}/${name}`, before: null, after: { version: info.version }, at: info.updatedAt, requestId: requestId ?? null });
    return { name, secret, version: info.version };
  }
}
