/**
 * Salesforce's REST API for the CRM step: the OAuth 2.0 client credentials flow
 * (`POST /services/oauth2/token`, client authenticated by Basic or form fields) answering
 * `{ access_token, instance_url, token_type: "Bearer", issued_at }`, and sObject create
 * (`POST /services/data/v62.0/sobjects/{type}`) and upsert by an external id
 * (`PATCH .../sobjects/{type}/{field}/{value}`: 201 created, 200 updated, so a repeated upsert
 * leaves one record). Errors are Salesforce's arrays `[{ message, errorCode, fields }]`:
 * `INVALID_SESSION_ID` (401), `REQUIRED_FIELD_MISSING` (400), `NOT_FOUND` (404); token errors
 * `{ error: "invalid_client", error_description }`.
 */
import { randomBytes } from 'node:crypto';
import { basicAuth, bearer, json, startMessagingFake, type MessagingFake, type MessagingState } from './messaging.js';

export interface SalesforceFakeState extends MessagingState {
  records: Map<string, Array<{ id: string; fields: Record<string, unknown> }>>;
  tokens: Set<string>;
}

export type SalesforceFake = MessagingFake<SalesforceFakeState> & { expireTokens(): void };

export const SALESFORCE_API_VERSION = 'v62.0';
const REQUIRED: Record<string, string[]> = { Task: ['Subject'], Note: ['Title', 'ParentId'], Contact: ['LastName'] };

export async function startSalesforceFake(o: { port?: number; clients: Record<string, string> }): Promise<SalesforceFake> {
  const state: SalesforceFakeState = { received: [], records: new Map(), tokens: new Set() };
  const list = (type: string) => {
    let l = state.records.get(type);
    if (!l) state.records.set(type, (l = []));
    return l;
  };
  const newId = (type: string) => `${type === 'Task' ? '00T' : '003'}${randomBytes(6).toString('hex').slice(0, 12).toUpperCase()}AAA`;
  let url = '';
  const fake = await startMessagingFake({ port: o.port, faultBody: (status) => [{ message: `fault ${status}`, errorCode: 'SERVER_UNAVAILABLE' }] }, state, (app, limiter) => {
    app.post('/services/oauth2/token', async (c) => {
      const f = (await c.req.parseBody()) as Record<string, string>;
      const [id, secret] = basicAuth(c) ?? [f.client_id, f.client_secret];
      if (f.grant_type !== 'client_credentials') return json(c, 400, { error: 'unsupported_grant_type', error_description: 'grant type not supported' });
      if (!id || o.clients[id] !== secret || limiter.revoked.has(id)) return json(c, 400, { error: 'invalid_client', error_description: 'invalid client credentials' });
      const token = `00D${randomBytes(24).toString('base64url')}`;
      state.tokens.add(token);
      return json(c, 200, { access_token: token, instance_url: url, id: `${url}/id/00Dfake/005fake`, token_type: 'Bearer', issued_at: String(Date.now()), signature: randomBytes(32).toString('base64') });
    });
    const authed = (c: Parameters<typeof bearer>[0]) => {
      const t = bearer(c);
      return t && state.tokens.has(t) ? t : undefined;
    };
    const invalid = [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }];
    const missing = (type: string, fields: Record<string, unknown>) => (REQUIRED[type] ?? []).filter((f) => fields[f] === undefined || fields[f] === '');
    app.post(`/services/data/${SALESFORCE_API_VERSION}/sobjects/:type`, async (c) => {
      const token = authed(c);
      if (!token) return json(c, 401, invalid);
      const wait = limiter.check(token);
      if (wait > 0) return json(c, 403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }]);
      const type = c.req.param('type');
      const fields = (await c.req.json().catch(() => ({}))) as Record<string, unknown>;
      const gaps = missing(type, fields);
      if (gaps.length) return json(c, 400, [{ message: `Required fields are missing: [${gaps.join(', ')}]`, errorCode: 'REQUIRED_FIELD_MISSING', fields: gaps }]);
      const id = newId(type);
      list(type).push({ id, fields });
      return json(c, 201, { id, success: true, errors: [] });
    });
    app.patch(`/services/data/${SALESFORCE_API_VERSION}/sobjects/:type/:field/:value`, async (c) => {
      const token = authed(c);
      if (!token) return json(c, 401, invalid);
      const { type, field, value } = c.req.param();
      const fields = (await c.req.json().catch(() => ({}))) as Record<string, unknown>;
      const existing = list(type).find((r) => r.fields[field] === value);
      if (existing) {
        Object.assign(existing.fields, fields);
        return json(c, 200, { id: existing.id, success: true, errors: [], created: false });
      }
      const gaps = missing(type, fields);
      if (gaps.length) return json(c, 400, [{ message: `Required fields are missing: [${gaps.join(', ')}]`, errorCode: 'REQUIRED_FIELD_MISSING', fields: gaps }]);
      const id = newId(type);
      list(type).push({ id, fields: { ...fields, [field]: value } });
      return json(c, 201, { id, success: true, errors: [], created: true });
    });
  });
  url = fake.url;
  return Object.assign(fake, { expireTokens: () => state.tokens.clear() });
}
