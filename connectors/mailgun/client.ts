/**
 * Mailgun's Messages API: `POST /v3/{domain}/messages`, HTTP Basic (`api:<key>`), the message as
 * form fields (`from`, `to`, `subject`, `text`, `html`, `h:` headers, `v:` variables). It answers
 * 200 `{ id: "<...@domain>", message: "Queued. Thank you." }`. Mailgun does not dedupe sends: the
 * idempotency key travels as the user variable `v:concord-idempotency-key` (echoed in events).
 */
import type { CallContext, CredentialsOf } from '../kit/contract.js';
import { authorization } from './auth.js';
import { classifyMailgun, classifyMailgunAnswer } from './errors.js';
import { toMailgunForm, type MailgunMail } from './mapping.js';

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
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { authorization: authorization(creds), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: toMailgunForm(mail, ctx.idempotencyKey).toString(),
      signal: ctx.signal,
    });
  } catch (err) {
    throw classifyMailgun(err);
  }
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    body = text;
  }
  if (res.status !== 200) throw classifyMailgunAnswer(res.status, res.headers, body);
  const b = body as Partial<Queued>;
  return { id: String(b.id ?? ''), message: String(b.message ?? '') };
}
