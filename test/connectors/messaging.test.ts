/**
 * The messaging connectors (SendGrid, Mailgun, Slack, Teams, Twilio) against their fakes and
 * with signed webhook fixtures: the cases of the provider contract suite that fit a send-only
 * API (auth refused, throttling with the provider's wait, outages, hangs, signature checks).
 * Listing, paging and compare-and-set (the marketplace contract) do not apply to them.
 */
import { createSign, generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invokerOf, type CallContext, type ConnectorInvoker, type WebhookRequest } from '../../connectors/kit/contract.js';
import { createMailgunConnector, signMailgun } from '../../connectors/mailgun/index.js';
import { createSendGridConnector, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../connectors/sendgrid/index.js';
import { classifySlackAnswer, createSlackConnector, signSlack } from '../../connectors/slack/index.js';
import { classifyTeamsAnswer, createTeamsConnector, checkTeamsUrl } from '../../connectors/teams/index.js';
import { createTwilioConnector, signTwilio } from '../../connectors/twilio/index.js';
import { startMailgunFake, type MailgunFake } from '../../simulator/fakes/mailgun.js';
import { startSendGridFake, type SendGridFake } from '../../simulator/fakes/sendgrid.js';
import { startSlackFake, type SlackFake } from '../../simulator/fakes/slack.js';
import { startTeamsFake, type TeamsFake } from '../../simulator/fakes/teams.js';
import { startTwilioFake, type TwilioFake } from '../../simulator/fakes/twilio.js';
import type { MessagingFake } from '../../simulator/fakes/messaging.js';

const ctx = (signal = new AbortController().signal): CallContext => ({ signal, idempotencyKey: 'playbook-execution/e/s#1' });
const enc = (s: string) => new TextEncoder().encode(s);
const NOW = Date.parse('2026-12-07T09:00:00Z');
const SEC = String(Math.floor(NOW / 1000));

interface Case {
  name: string;
  fake: () => MessagingFake;
  invoke: () => ConnectorInvoker;
  operation: string;
  input: () => unknown;
  credential: string;
}

let sendgrid: SendGridFake;
let mailgun: MailgunFake;
let slack: SlackFake;
let teams: TeamsFake;
let twilio: TwilioFake;

beforeAll(async () => {
  [sendgrid, mailgun, slack, teams, twilio] = await Promise.all([
    startSendGridFake({ apiKeys: ['sg-key'] }),
    startMailgunFake({ apiKeys: ['mg-key'], domains: ['mg.example.com'] }),
    startSlackFake({ tokens: ['xoxb-1'], channels: { '#ops': 'C1' } }),
    startTeamsFake({ webhooks: ['w1'] }),
    startTwilioFake({ accounts: { AC1: 'tw-token' } }),
  ]);
});
afterAll(async () => Promise.all([sendgrid, mailgun, slack, teams, twilio].map((f) => f.close())));

const cases: Case[] = [
  { name: 'sendgrid', fake: () => sendgrid, operation: 'send', credential: 'sg-key', invoke: () => invokerOf(createSendGridConnector({ baseUrl: sendgrid.url }), async () => ({ apiKey: 'sg-key' })), input: () => ({ to: ['a@example.com'], from: 'b@example.com', subject: 's', text: 't' }) },
  { name: 'mailgun', fake: () => mailgun, operation: 'send', credential: 'mg-key', invoke: () => invokerOf(createMailgunConnector({ baseUrl: mailgun.url }), async () => ({ apiKey: 'mg-key' })), input: () => ({ domain: 'mg.example.com', to: ['a@example.com'], from: 'b@mg.example.com', subject: 's', text: 't' }) },
  { name: 'slack', fake: () => slack, operation: 'postMessage', credential: 'xoxb-1', invoke: () => invokerOf(createSlackConnector({ baseUrl: `${slack.url}/api` }), async () => ({ accessToken: 'xoxb-1' })), input: () => ({ channel: '#ops', text: 't' }) },
  { name: 'teams', fake: () => teams, operation: 'postMessage', credential: 'w1', invoke: () => invokerOf(createTeamsConnector({ checkUrl: () => undefined }), async () => ({ apiKey: teams.webhookUrl('w1') })), input: () => ({ text: 't' }) },
  { name: 'twilio', fake: () => twilio, operation: 'send', credential: 'AC1', invoke: () => invokerOf(createTwilioConnector({ baseUrl: twilio.url }), async () => ({ apiKey: 'tw-token' })), input: () => ({ accountSid: 'AC1', to: '+14155550100', from: '+14155550199', body: 't' }) },
];

describe.each(cases)('$name against its fake', (c) => {
  it('sends', async () => {
    await expect(c.invoke()(c.operation, c.input(), ctx())).resolves.toBeTruthy();
  });

  it('throttled: RATE_LIMITED, retryable, with the provider\'s wait', async () => {
    c.fake().control.setRateLimit({ limit: 0, windowMs: 3000 });
    try {
      const err = await c.invoke()(c.operation, c.input(), ctx()).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'ConnectorError', code: 'RATE_LIMITED', retryable: true });
      expect((err as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    } finally {
      c.fake().control.setRateLimit(undefined);
    }
  });

  it('a 5xx is UNAVAILABLE and retryable; down is NETWORK; a hang ends at the caller\'s deadline as TIMEOUT', async () => {
    c.fake().control.fail({ status: 503, count: 1 });
    await expect(c.invoke()(c.operation, c.input(), ctx())).rejects.toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    c.fake().control.hang({ count: 1 });
    await expect(c.invoke()(c.operation, c.input(), ctx(AbortSignal.timeout(200)))).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true });
    c.fake().control.clearFaults();
    await c.fake().control.down();
    try {
      await expect(c.invoke()(c.operation, c.input(), ctx())).rejects.toMatchObject({ code: 'NETWORK', retryable: true });
    } finally {
      await c.fake().control.up();
    }
  });

  it('a revoked credential needs a person: REAUTHORIZATION_REQUIRED, not retryable', async () => {
    c.fake().control.revoke(c.credential);
    await expect(c.invoke()(c.operation, c.input(), ctx())).rejects.toMatchObject({ code: 'REAUTHORIZATION_REQUIRED', retryable: false });
  });
});

describe('signed webhooks (recorded fixtures, pure)', () => {
  it('slack: v0 HMAC over v0:timestamp:body, within 5 minutes', () => {
    const hooks = createSlackConnector({ baseUrl: 'x' }).webhooks!;
    const body = enc('{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"C1","user":"U1","text":"hi"}}');
    const good: WebhookRequest = { body, headers: { 'x-slack-request-timestamp': SEC, 'x-slack-signature': signSlack('shh', SEC, body) } };
    expect(hooks.verify(good, 'shh', NOW)).toEqual({ ok: true });
    expect(hooks.parse(good)).toEqual([{ kind: 'message', eventId: 'Ev1', channel: 'C1', user: 'U1', text: 'hi', challenge: null }]);
    expect(hooks.verify(good, 'other', NOW).ok).toBe(false);
    expect(hooks.verify({ ...good, body: enc('{"type":"x"}') }, 'shh', NOW).ok).toBe(false);
    expect(hooks.verify(good, 'shh', NOW + 6 * 60_000)).toEqual({ ok: false, reason: 'timestamp outside the 5-minute window' });
  });

  it('mailgun: HMAC-SHA256 of timestamp + token with the signing key', () => {
    const hooks = createMailgunConnector({ baseUrl: 'x' }).webhooks!;
    const sig = { timestamp: SEC, token: 'tok-1', signature: signMailgun('key-sign', SEC, 'tok-1') };
    const event = { event: 'delivered', timestamp: NOW / 1000, recipient: 'a@example.com', 'user-variables': { 'concord-idempotency-key': 'k1' }, message: { headers: { 'message-id': 'm1@mg' } } };
    const good: WebhookRequest = { body: enc(JSON.stringify({ signature: sig, 'event-data': event })), headers: {} };
    expect(hooks.verify(good, 'key-sign', NOW)).toEqual({ ok: true });
    expect(hooks.parse(good)).toEqual([{ email: 'a@example.com', event: 'delivered', at: '2026-12-07T09:00:00.000Z', messageId: 'm1@mg', idempotencyKey: 'k1' }]);
    const forged = { body: enc(JSON.stringify({ signature: { ...sig, token: 'tok-2' }, 'event-data': event })), headers: {} };
    expect(hooks.verify(forged, 'key-sign', NOW).ok).toBe(false);
    expect(hooks.verify(good, 'key-sign', NOW + 3_600_000).ok).toBe(false);
  });

  it('sendgrid: ECDSA P-256 over timestamp + body with the verification key', () => {
    const hooks = createSendGridConnector({ baseUrl: 'x' }).webhooks!;
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const verificationKey = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
    const body = enc(JSON.stringify([{ email: 'a@example.com', event: 'delivered', timestamp: NOW / 1000, sg_message_id: 'sg1', concord_idempotency_key: 'k1' }]));
    const s = createSign('sha256');
    s.update(SEC);
    s.update(body);
    const good: WebhookRequest = { body, headers: { [SIGNATURE_HEADER]: s.sign(privateKey).toString('base64'), [TIMESTAMP_HEADER]: SEC } };
    expect(hooks.verify(good, verificationKey, NOW)).toEqual({ ok: true });
    expect(hooks.parse(good)).toEqual([{ email: 'a@example.com', event: 'delivered', at: '2026-12-07T09:00:00.000Z', messageId: 'sg1', idempotencyKey: 'k1' }]);
    expect(hooks.verify({ ...good, body: enc('[]') }, verificationKey, NOW).ok).toBe(false);
    expect(hooks.verify(good, 'bm90IGEga2V5', NOW)).toEqual({ ok: false, reason: 'signature or key malformed' });
  });

  it('twilio: HMAC-SHA1 over the callback URL and the sorted parameters', () => {
    const hooks = createTwilioConnector({ baseUrl: 'x' }).webhooks!;
    const url = 'https://concord.example.com/api/integrations/twilio/webhook';
    const params = { MessageSid: 'SM1', MessageStatus: 'delivered', To: '+14155550100' };
    const good: WebhookRequest = { body: enc(new URLSearchParams(params).toString()), headers: { 'x-twilio-signature': signTwilio('tw-token', url, params) }, query: { url } };
    expect(hooks.verify(good, 'tw-token', NOW)).toEqual({ ok: true });
    expect(hooks.parse(good)).toEqual([{ messageSid: 'SM1', status: 'delivered', errorCode: null }]);
    expect(hooks.verify({ ...good, query: { url: `${url}?x=1` } }, 'tw-token', NOW).ok).toBe(false);
    expect(hooks.verify(good, 'other', NOW).ok).toBe(false);
  });
});

describe('classification details', () => {
  it("slack's ok:false codes", () => {
    const h = new Headers();
    expect(classifySlackAnswer(200, h, { ok: false, error: 'invalid_auth' })).toMatchObject({ code: 'REAUTHORIZATION_REQUIRED', retryable: false });
    expect(classifySlackAnswer(200, h, { ok: false, error: 'missing_scope' })).toMatchObject({ code: 'FORBIDDEN', retryable: false });
    expect(classifySlackAnswer(200, h, { ok: false, error: 'msg_too_long' })).toMatchObject({ code: 'VALIDATION', retryable: false });
    expect(classifySlackAnswer(200, h, { ok: false, error: 'internal_error' })).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(classifySlackAnswer(429, new Headers({ 'retry-after': '30' }), { ok: false, error: 'ratelimited' })).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 30_000 });
  });

  it('teams: a 200 that is not `1` failed; a removed webhook needs a new one; only Microsoft hosts over HTTPS', () => {
    expect(classifyTeamsAnswer(200, new Headers(), 'Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId x')).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect(classifyTeamsAnswer(200, new Headers(), 'Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 500')).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
    expect(classifyTeamsAnswer(404, new Headers(), 'not found')).toMatchObject({ code: 'REAUTHORIZATION_REQUIRED', retryable: false });
    expect(classifyTeamsAnswer(400, new Headers(), 'Bad payload received by generic incoming webhook.')).toMatchObject({ code: 'VALIDATION', retryable: false });
    expect(() => checkTeamsUrl(new URL('https://contoso.webhook.office.com/webhookb2/x'))).not.toThrow();
    expect(() => checkTeamsUrl(new URL('http://contoso.webhook.office.com/webhookb2/x'))).toThrow(/not a Teams/);
    expect(() => checkTeamsUrl(new URL('https://webhook.office.com.evil.example/x'))).toThrow(/not a Teams/);
  });
});
