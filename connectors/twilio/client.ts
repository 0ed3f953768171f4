/**
 * Twilio's Messages API: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic, the
 * message as form fields (`To`, `From` or `MessagingServiceSid`, `Body`). It answers 201 with the
 * Message resource (`sid`, `status: "queued"`, ...). Twilio's Messages API takes no idempotency
 * key: a send retried after a lost answer (a timeout, a reset) can reach the phone twice. Twilio
 * documents this; a playbook that cannot tolerate it sets `retry: { maxAttempts: 1 }` on the step.
 */
import type { CallContext, CredentialsOf } from '../kit/contract.js';
import { authorization } from './auth.js';
import { classifyTwilio, classifyTwilioAnswer } from './errors.js';
import { fromTwilioMessage, toTwilioForm, type Sms, type SmsSent, type TwilioMessage } from './mapping.js';

export interface TwilioSettings {
  /** `https://api.twilio.com`; the fake's URL in tests. */
  baseUrl: string;
}

export const TWILIO_API = 'https://api.twilio.com';

export async function sendSms(settings: TwilioSettings, creds: CredentialsOf<'api_key'>, sms: Sms, ctx: CallContext): Promise<SmsSent> {
  const url = `${settings.baseUrl.replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(sms.accountSid)}/Messages.json`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { authorization: authorization(sms.keySid ?? sms.accountSid, creds), 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: toTwilioForm(sms).toString(),
      signal: ctx.signal,
    });
  } catch (err) {
    throw classifyTwilio(err);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (res.status !== 201 && res.status !== 200) throw classifyTwilioAnswer(res.status, res.headers, body);
  return fromTwilioMessage(body as TwilioMessage);
}
