/**
 * SendGrid's v3 Mail Send (`POST /v3/mail/send`): bearer API keys, the request checks SendGrid
 * answers 400 for (no personalization, no recipient, no from, no subject, no content), 401 with
 * its errors envelope for a wrong or revoked key, 429 with `X-RateLimit-Limit/-Remaining/-Reset`,
 * and 202 with an empty body and `X-Message-Id` for a message it takes. Attachments are checked as
 * SendGrid checks them (base64 `content`, `filename`, a `type` without `;`, `disposition`
 * attachment|inline).
 */
import { randomBytes } from 'node:crypto';
import { bearer, json, startMessagingFake, type MessagingFake, type MessagingState } from './messaging.js';

export interface SendGridFakeState extends MessagingState {
  /** Messages accepted, with the key that sent them and the id answered. */
  mails: Array<{ messageId: string; apiKey: string; body: Record<string, unknown> }>;
}

export type SendGridFake = MessagingFake<SendGridFakeState>;

const errors = (...messages: Array<[string, string | null]>) => ({ errors: messages.map(([message, field]) => ({ message, field, help: null })) });

export async function startSendGridFake(o: { port?: number; apiKeys: string[] }): Promise<SendGridFake> {
  const state: SendGridFakeState = { received: [], mails: [] };
  const keys = new Set(o.apiKeys);
  return startMessagingFake({ port: o.port, faultBody: (status) => errors([`fault ${status}`, null]) }, state, (app, limiter) => {
    app.post('/v3/mail/send', async (c) => {
      const key = bearer(c);
      if (!key || !keys.has(key) || limiter.revoked.has(key)) {
        return json(c, 401, errors(['The provided authorization grant is invalid, expired, or revoked', null]));
      }
      const wait = limiter.check(key);
      if (wait > 0) {
        const reset = Math.ceil((Date.now() + wait) / 1000);
        return json(c, 429, errors(['too many requests', null]), { 'x-ratelimit-limit': '600', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) });
      }
      let body: Record<string, unknown>;
      try {
        body = (await c.req.json()) as Record<string, unknown>;
      } catch {
        return json(c, 400, errors(['Bad Request', null]));
      }
      const problems: Array<[string, string | null]> = [];
      const p = body.personalizations as Array<{ to?: Array<{ email?: string }> }> | undefined;
      if (!Array.isArray(p) || p.length === 0) problems.push(['The personalizations field is required and must have at least one personalization.', 'personalizations']);
      else if (!p.every((x) => Array.isArray(x.to) && x.to.length > 0 && x.to.every((t) => typeof t.email === 'string' && t.email.includes('@')))) {
        problems.push(['The to array is required for all personalization objects, and must have at least one email object with a valid email address.', 'personalizations.0.to']);
      }
      if (typeof (body.from as { email?: unknown } | undefined)?.email !== 'string') problems.push(['The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.', 'from']);
      if (typeof body.subject !== 'string' || body.subject === '') problems.push(['The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.', 'subject']);
      const content = body.content as Array<{ value?: string }> | undefined;
      if (!Array.isArray(content) || content.length === 0 || content.some((x) => !x.value)) problems.push(['The content value must be a string at least one character in length.', 'content.0.value']);
      const attachments = body.attachments as Array<Record<string, unknown>> | undefined;
      if (attachments !== undefined) {
        if (!Array.isArray(attachments)) problems.push(['The attachments field must be an array of attachment objects.', 'attachments']);
        else
          attachments.forEach((a, i) => {
            if (typeof a?.content !== 'string' || a.content === '') problems.push(['The attachment content is required.', `attachments.${i}.content`]);
            else if (!/^[A-Za-z0-9+/]+={0,2}$/.test(a.content) || a.content.length % 4 !== 0) problems.push(['The attachment content must be base64 encoded.', `attachments.${i}.content`]);
            if (typeof a?.filename !== 'string' || a.filename === '') problems.push(['The attachment filename parameter is required.', `attachments.${i}.filename`]);
            if (a?.type !== undefined && (typeof a.type !== 'string' || /[;\s]/.test(a.type))) problems.push(['The attachment type cannot contain ";", or CRLF characters.', `attachments.${i}.type`]);
            if (a?.disposition !== undefined && a.disposition !== 'attachment' && a.disposition !== 'inline') problems.push(['The disposition of your attachment can be either "inline" or "attachment".', `attachments.${i}.disposition`]);
          });
      }
      if (problems.length > 0) return json(c, 400, errors(...problems));
      const messageId = randomBytes(11).toString('base64url');
      state.mails.push({ messageId, apiKey: key, body });
      c.header('x-message-id', messageId);
      return c.body(null, 202);
    });
  });
}
