/**
 * SendGrid's v3 Mail Send API: `POST /v3/mail/send` with `Authorization: Bearer <API key>` and a
 * JSON body (personalizations, from, subject, content). It answers 202 with an empty body and
 * the message id in `X-Message-Id`. SendGrid does not dedupe sends: the call's idempotency key
 * travels in `custom_args`, so every event of the message (Event Webhook) carries it back.
 */
import type { CallContext, CredentialsOf } from '../kit/contract.js';
import { authorization } from './auth.js';
import { classifySendGrid, classifySendGridAnswer } from './errors.js';
import { toSendGridMail, type Mail } from './mapping.js';

export interface SendGridSettings {
  /** `https://api.sendgrid.com` (EU subusers: `https://api.eu.sendgrid.com`); the fake's URL in tests. */
  baseUrl: string;
}

export const SENDGRID_API = 'https://api.sendgrid.com';

export interface Sent {
  messageId: string | null;
  status: number;
}

export async function sendMail(settings: SendGridSettings, creds: CredentialsOf<'api_key'>, mail: Mail, ctx: CallContext): Promise<Sent> {
  const body = JSON.stringify(toSendGridMail(mail, ctx.idempotencyKey));
  let res: Response;
  try {
    res = await fetch(`${settings.baseUrl.replace(/\/+$/, '')}/v3/mail/send`, {
      method: 'POST',
      headers: { authorization: authorization(creds), 'content-type': 'application/json', accept: 'application/json' },
      body,
      signal: ctx.signal,
    });
  } catch (err) {
    throw classifySendGrid(err);
  }
  const text = await res.text().catch(() => '');
  if (res.status !== 202 && res.status !== 200) throw classifySendGridAnswer(res.status, res.headers, parse(text));
  return { messageId: res.headers.get('x-message-id'), status: res.status };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
