/**
 * Mailgun's Messages API: `POST /v3/{domain}/messages`, HTTP Basic (`api:<key>`), the message as
 * form fields (`from`, `to`, `subject`, `text`, `html`, `h:` headers, `v:` variables; multipart with
 * `attachment` file parts when the message has attachments). It answers
 * 200 `{ id: "<...@domain>", message: "Queued. Thank you." }`. Mailgun does not dedupe sends: the
 * idempotency key travels as the user variable `v:concord-idempotency-key` (echoed in events).
 */
import type { CallContext, CredentialsOf } from '../kit/contract.js';
import { authorization } from './auth.js';
import { classifyMailgun, classifyMailgunAnswer } from './errors.js';
import { toMailgunBody, type MailgunMail } from './mapping.js';

export interface MailgunSettings {
  /** `https://api.mailgun.net` (EU domains: `https://api.eu.mailgun.net`); the fake's URL in tests. */
  baseUrl: string;
}

export const MAILGUN_API = 'https://api.mailgun.net';

export interface Queued {
  id: string;
  message: string;
}

export async function sendMessage(settings: MailgunSettings, creds: CredentialsOf<'api_key'>, mail: MailgunMail, ctx: CallContext): Promise<Queued> {
  const url = `${settings.baseUrl.replace(/\/+$/, '')}/v3/${encodeURIComponent(mail.domain)}/messages`;
  const body = toMailgunBody(mail, ctx.idempotencyKey);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      // FormData (attachments) sets its own multipart content type with the boundary
      headers: { authorization: authorization(creds), ...(body instanceof FormData ? {} : { 'content-type': 'application/x-www-form-urlencoded' }), accept: 'application/json' },
      body: body instanceof FormData ? body : body.toString(),
      signal: ctx.signal,
    });
  } catch (err) {
    throw classifyMailgun(err);
  }
  const text = await res.text().catch(() => '');
  let answer: unknown;
  try {
    answer = JSON.parse(text) as unknown;
  } catch {
    answer = text;
  }
  if (res.status !== 200) throw classifyMailgunAnswer(res.status, res.headers, answer);
  const b = answer as Partial<Queued>;
  return { id: String(b.id ?? ''), message: String(b.message ?? '') };
}
