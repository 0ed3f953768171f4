/**
 * The generic REST connector: any API configured with a base URL and one of the four
 * authentication patterns. A new provider of this kind is settings, not code; one that needs
 * more is a new folder of the same shape, not a refactor.
 *
 * @example
 * const crm = createGenericConnector({ baseUrl: 'https://crm.example.com/v1', auth: { pattern: 'api_key', in: 'header', name: 'x-api-key' } });
 * await crm.calls.list({ apiKey }, { resource: 'contacts' }, ctx);
 */
import { defineConnector } from '../kit/contract.js';
import type { GenericAuth } from './auth.js';
import { GenericClient, type GenericSettings, type RequestInput } from './client.js';
import { classifyGeneric } from './errors.js';
import { recordMapping } from './mapping.js';
import { genericWebhooks, type GenericWebhookSettings } from './webhooks.js';

export function createGenericConnector<A extends GenericAuth>(settings: GenericSettings<A> & { id?: string; webhooks?: GenericWebhookSettings }) {
  const client = new GenericClient(settings);
  return defineConnector({
    id: settings.id ?? 'generic',
    auth: settings.auth.pattern as A['pattern'],
    calls: {
      request: (creds, input: RequestInput, ctx) => client.request(creds, input, ctx),
      list: (creds, input: { resource: string; limit?: number; cursor?: string | null; query?: Record<string, string> }, ctx) => client.list(creds, input, ctx),
      get: (creds, input: { resource: string; id: string }, ctx) => client.get(creds, input, ctx),
      update: (creds, input: { resource: string; id: string; body: Record<string, unknown>; ifMatch?: string; merge?: boolean }, ctx) => client.update(creds, input, ctx),
      health: (creds, _input: Record<string, never>, ctx) => client.health(creds, ctx),
    },
    ...(settings.webhooks ? { webhooks: genericWebhooks(settings.webhooks) } : {}),
    mapping: { record: recordMapping },
    classify: classifyGeneric,
  });
}

export * from './auth.js';
export * from './client.js';
export * from './errors.js';
export * from './mapping.js';
export * from './transport.js';
export * from './webhooks.js';
