/**
 * Twilio's Messages API (`POST /2010-04-01/Accounts/{AccountSid}/Messages.json`): HTTP Basic
 * `AccountSid:AuthToken`, form fields, errors in Twilio's envelope `{ code, message, more_info,
 * status }` (20003 Authenticate, 20404 an unknown account, 21211 an invalid `To`, 21602 no body,
 * 21603 no `From`, 21610 an unsubscribed recipient, 20429 throttled with `Retry-After`), and 201
 * with the Message resource (`status: "queued"`).
 */
import { randomBytes } from 'node:crypto';
import { basicAuth, json, startMessagingFake, type MessagingFake, type MessagingState } from './messaging.js';

export interface TwilioFakeState extends MessagingState {
  messages: Array<{ sid: string; accountSid: string; to: string; from: string | null; body: string }>;
}

export type TwilioFake = MessagingFake<TwilioFakeState>;

const err = (code: number, message: string, status: number) => ({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });

export async function startTwilioFake(o: { port?: number; accounts: Record<string, string>; unsubscribed?: string[] }): Promise<TwilioFake> {
  const state: TwilioFakeState = { received: [], messages: [] };
  const unsubscribed = new Set(o.unsubscribed ?? []);
  return startMessagingFake({ port: o.port, faultBody: (status) => err(20500, 'Internal Server Error', status) }, state, (app, limiter) => {
    app.post('/2010-04-01/Accounts/:sid/Messages.json', async (c) => {
      const sid = c.req.param('sid');
      const auth = basicAuth(c);
      if (!auth || o.accounts[auth[0]] !== auth[1] || limiter.revoked.has(auth[0]) || limiter.revoked.has(auth[1])) return json(c, 401, err(20003, 'Authenticate', 401));
      if (auth[0] !== sid) return json(c, 404, err(20404, `The requested resource /2010-04-01/Accounts/${sid}/Messages.json was not found`, 404));
      const wait = limiter.check(sid);
      if (wait > 0) return json(c, 429, err(20429, 'Too Many Requests', 429), { 'retry-after': String(Math.ceil(wait / 1000)) });
      const f = (await c.req.parseBody()) as Record<string, string>;
      if (!f.To || !/^\+[1-9]\d{6,14}$/.test(f.To)) return json(c, 400, err(21211, `Invalid 'To' Phone Number: ${f.To ?? ''}`, 400));
      if (!f.Body) return json(c, 400, err(21602, 'Message body is required.', 400));
      if (!f.From && !f.MessagingServiceSid) return json(c, 400, err(21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message", 400));
      if (unsubscribed.has(f.To)) return json(c, 400, err(21610, 'Attempt to send to unsubscribed recipient', 400));
      const msid = `SM${randomBytes(16).toString('hex')}`;
      state.messages.push({ sid: msid, accountSid: sid, to: f.To, from: f.From ?? null, body: f.Body });
      const now = new Date().toUTCString();
      return json(c, 201, {
        account_sid: sid, api_version: '2010-04-01', body: f.Body, date_created: now, date_sent: null, date_updated: now, direction: 'outbound-api',
        error_code: null, error_message: null, from: f.From ?? null, messaging_service_sid: f.MessagingServiceSid ?? null, num_media: '0',
        num_segments: String(Math.max(1, Math.ceil(f.Body.length / 160))), price: null, price_unit: 'USD', sid: msid, status: 'queued',
        to: f.To, uri: `/2010-04-01/Accounts/${sid}/Messages/${msid}.json`,
      });
    });
  });
}
