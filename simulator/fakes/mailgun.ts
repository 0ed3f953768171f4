/**
 * Mailgun's Messages API (`POST /v3/{domain}/messages`): HTTP Basic `api:<key>`, form fields
 * (urlencoded or multipart, files as `attachment`/`inline` parts), 401 with the plain text `Forbidden` for a wrong key, 404
 * `{ message: "Domain not found: ..." }`, 400 `{ message }` for a missing field, 429 with
 * `Retry-After`, and 200 `{ id: "<...@domain>", message: "Queued. Thank you." }`.
 */
import { randomBytes } from 'node:crypto';
import { basicAuth, json, startMessagingFake, text, type MessagingFake, type MessagingState } from './messaging.js';

export interface MailgunFakeState extends MessagingState {
  messages: Array<{ id: string; domain: string; fields: Record<string, string[]>; files: MailgunFile[] }>;
}

/** A file part of a multipart message (`attachment` or `inline`), as received. */
export interface MailgunFile {
  field: string;
  filename: string;
  type: string;
  bytes: Buffer;
}

export type MailgunFake = MessagingFake<MailgunFakeState>;

export async function startMailgunFake(o: { port?: number; apiKeys: string[]; domains: string[] }): Promise<MailgunFake> {
  const state: MailgunFakeState = { received: [], messages: [] };
  const keys = new Set(o.apiKeys);
  const domains = new Set(o.domains);
  return startMessagingFake({ port: o.port, faultBody: (status) => ({ message: `fault ${status}` }) }, state, (app, limiter) => {
    app.post('/v3/:domain/messages', async (c) => {
      const auth = basicAuth(c);
      if (!auth || auth[0] !== 'api' || !keys.has(auth[1]) || limiter.revoked.has(auth[1])) return text(c, 401, 'Forbidden');
      const wait = limiter.check(auth[1]);
      if (wait > 0) return json(c, 429, { message: 'Too many requests' }, { 'retry-after': String(Math.ceil(wait / 1000)) });
      const domain = c.req.param('domain');
      if (!domains.has(domain)) return json(c, 404, { message: `Domain not found: ${domain}` });
      const form = await c.req.parseBody({ all: true });
      const fields: Record<string, string[]> = {};
      const files: MailgunFile[] = [];
      for (const [k, v] of Object.entries(form)) {
        const values = Array.isArray(v) ? v : [v];
        for (const x of values) {
          if (typeof x === 'string') (fields[k] ??= []).push(x);
          else if (k === 'attachment' || k === 'inline') files.push({ field: k, filename: x.name, type: x.type, bytes: Buffer.from(await x.arrayBuffer()) });
          else return json(c, 400, { message: `'${k}' parameter is not a file field` });
        }
      }
      if (!fields.from?.[0]) return json(c, 400, { message: "'from' parameter is missing" });
      if (!fields.to?.length) return json(c, 400, { message: "'to' parameter is missing" });
      if (!fields.text && !fields.html && !fields.template) return json(c, 400, { message: 'Need at least one of \'text\', \'html\' or \'template\' parameters specified' });
      const id = `<${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}.${randomBytes(8).toString('hex')}@${domain}>`;
      state.messages.push({ id, domain, fields, files });
      return json(c, 200, { id, message: 'Queued. Thank you.' });
    });
  });
}
