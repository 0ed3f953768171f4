import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../../runtime/db.js';
import type { StepScope } from '../../../../services/playbooks/steps/index.js';
import { startMailgunFake, type MailgunFake } from '../../../../simulator/fakes/mailgun.js';
import { startSalesforceFake, type SalesforceFake } from '../../../../simulator/fakes/salesforce.js';
import { startSendGridFake, type SendGridFake } from '../../../../simulator/fakes/sendgrid.js';
import { startSlackFake, type SlackFake } from '../../../../simulator/fakes/slack.js';
import { startTeamsFake, type TeamsFake } from '../../../../simulator/fakes/teams.js';
import { startTwilioFake, type TwilioFake } from '../../../../simulator/fakes/twilio.js';
import { freshDatabase } from '../../../helpers/db.js';
import { ctxOf, failure, logLines, stepsOver } from './support.js';

const SENDGRID_KEY = 'SG.test-key-0123456789abcdef';
const MAILGUN_KEY = 'key-mailgun-0123456789abcdef';
const SLACK_TOKEN = 'xoxb-1234-5678-slacktokenabcdef';
const TWILIO_SID = 'AC0123456789abcdef0123456789abcdef';
const TWILIO_TOKEN = 'twilio-auth-token-0123456789ab';
const SF_CLIENT = '3MVG9-client-id';
const SF_SECRET = 'salesforce-client-secret-0123';
const TEAMS_HOOK = 'hook-0123456789';
const SECRETS = [SENDGRID_KEY, MAILGUN_KEY, SLACK_TOKEN, TWILIO_TOKEN, SF_SECRET, TEAMS_HOOK];

let database: Database;
let sendgrid: SendGridFake;
let mailgun: MailgunFake;
let slack: SlackFake;
let teams: TeamsFake;
let twilio: TwilioFake;
let salesforce: SalesforceFake;
let steps: ReturnType<typeof stepsOver>;

const local = (url: URL) => {
  if (url.hostname !== '127.0.0.1') throw new Error(`not the local fake: ${url.hostname}`);
};

const scope: StepScope = { inputs: { channel: '#partners' }, steps: { message: { output: '2 integrations need attention', status: 'succeeded' } } };

beforeAll(async () => {
  database = await freshDatabase(6);
  [sendgrid, mailgun, slack, teams, twilio, salesforce] = await Promise.all([
    startSendGridFake({ apiKeys: [SENDGRID_KEY] }),
    startMailgunFake({ apiKeys: [MAILGUN_KEY], domains: ['mg.example.com'] }),
    startSlackFake({ tokens: [SLACK_TOKEN], channels: { '#partners': 'C0PARTNERS' } }),
    startTeamsFake({ webhooks: [TEAMS_HOOK] }),
    startTwilioFake({ accounts: { [TWILIO_SID]: TWILIO_TOKEN }, unsubscribed: ['+14155550111'] }),
    startSalesforceFake({ clients: { [SF_CLIENT]: SF_SECRET } }),
  ]);
  steps = stepsOver(database, {
    providers: {
      sendgrid: { baseUrl: sendgrid.url },
      mailgun: { baseUrl: mailgun.url },
      slack: { baseUrl: `${slack.url}/api` },
      twilio: { baseUrl: twilio.url },
      teams: { checkUrl: local },
      salesforce: { checkUrl: local },
    },
  });
  const put = (service: string, secret: Record<string, string>, metadata: Record<string, unknown> = {}, tenantId = 'vendor-1') =>
    steps.vault.put({ tenantId, service, connectionId: 'default' }, secret, { metadata });
  await put('sendgrid', { apiKey: SENDGRID_KEY }, { from: 'partners@example.com' });
  await put('mailgun', { apiKey: MAILGUN_KEY }, { domain: 'mg.example.com', from: 'partners@mg.example.com' });
  await put('slack', { botToken: SLACK_TOKEN });
  await put('teams', { webhookUrl: teams.webhookUrl(TEAMS_HOOK) });
  await put('twilio', { authToken: TWILIO_TOKEN }, { accountSid: TWILIO_SID, from: '+14155550199' });
  await put('salesforce', { clientId: SF_CLIENT, clientSecret: SF_SECRET }, { instanceUrl: salesforce.url });
});

afterAll(async () => {
  await Promise.all([sendgrid, mailgun, slack, teams, twilio, salesforce].map((f) => f?.close()));
  await database.close();
});

describe('communicate: e-mail', () => {
  it('sends through SendGrid v3 mail/send with the bearer key, rendered text and the idempotency key in custom_args', async () => {
    const ctx = ctxOf('vendor-1');
    const out = await steps.runners.communicate({ channel: 'email', to: ['ops@example.com', 'cto@example.com'], subject: 'Partner health', text: '{{ steps.message.output }}', html: '<p>{{ steps.message.output }}</p>' }, scope, ctx);
    expect(out).toMatchObject({ channel: 'email', provider: 'sendgrid', recipients: 2, messageId: sendgrid.state.mails[0]!.messageId });
    const sent = sendgrid.state.received.at(-1)!;
    expect(sent.headers.authorization).toBe(`Bearer ${SENDGRID_KEY}`);
    expect(JSON.parse(sent.body)).toEqual({
      personalizations: [{ to: [{ email: 'ops@example.com' }, { email: 'cto@example.com' }] }],
      from: { email: 'partners@example.com' },
      subject: 'Partner health',
      content: [{ type: 'text/plain', value: '2 integrations need attention' }, { type: 'text/html', value: '<p>2 integrations need attention</p>' }],
      custom_args: { concord_idempotency_key: ctx.idempotencyKey },
    });
  });

  it("escapes what an e-mail's html inserts, unless | raw", async () => {
    const hostile: StepScope = { inputs: { name: '<img src=x onerror=alert(1)>' }, steps: { report: { output: '<h1>Report</h1>', status: 'succeeded' } } };
    await steps.runners.communicate({ channel: 'email', to: ['ops@example.com'], subject: 'Hi {{ inputs.name }}', html: '<p>{{ inputs.name }}</p>{{ steps.report.output | raw }}' }, hostile, ctxOf('vendor-1'));
    const body = JSON.parse(sendgrid.state.received.at(-1)!.body) as { subject: string; content: Array<{ value: string }> };
    expect(body.content[0]!.value).toBe('<p>&lt;img src=x onerror=alert(1)&gt;</p><h1>Report</h1>');
    expect(body.subject).toBe('Hi <img src=x onerror=alert(1)>'); // a subject is text, not markup
  });

  it("sends through Mailgun's messages API as form fields with Basic api:key", async () => {
    const ctx = ctxOf('vendor-1');
    const out = await steps.runners.communicate({ channel: 'email', provider: 'mailgun', to: 'ops@example.com', subject: 'Partner health', text: '{{ steps.message.output }}' }, scope, ctx);
    expect(out).toMatchObject({ provider: 'mailgun', messageId: expect.stringMatching(/^<.+@mg\.example\.com>$/) });
    const sent = mailgun.state.received.at(-1)!;
    expect(sent.headers.authorization).toBe(`Basic ${Buffer.from(`api:${MAILGUN_KEY}`).toString('base64')}`);
    expect(sent.headers['content-type']).toContain('application/x-www-form-urlencoded');
    const form = new URLSearchParams(sent.body);
    expect(Object.fromEntries(form)).toMatchObject({ from: 'partners@mg.example.com', to: 'ops@example.com', subject: 'Partner health', text: '2 integrations need attention', 'v:concord-idempotency-key': ctx.idempotencyKey });
  });

  it("attaches a pdf template step's report: SendGrid attachments (base64), Mailgun multipart attachment parts", async () => {
    const pdf = (await steps.runners.template({ source: '# Partners\n{{ steps.message.output }}', format: 'pdf', title: 'Weekly partners' }, scope, ctxOf('vendor-1'))) as { base64: string; filename: string; contentType: string };
    const withReport: StepScope = { ...scope, steps: { ...scope.steps, report: { output: pdf, status: 'succeeded' } } };
    const bytes = Buffer.from(pdf.base64, 'base64');
    expect(bytes.subarray(0, 5).toString()).toBe('%PDF-');

    const sg = await steps.runners.communicate({ channel: 'email', to: ['ops@example.com'], subject: 'Weekly report', text: 'attached', attachments: [{ step: 'report' }] }, withReport, ctxOf('vendor-1'));
    expect(sg).toMatchObject({ provider: 'sendgrid', attachments: ['Weekly-partners.pdf'] });
    const sent = JSON.parse(sendgrid.state.received.at(-1)!.body) as { attachments: unknown };
    expect(sent.attachments).toEqual([{ content: pdf.base64, filename: 'Weekly-partners.pdf', type: 'application/pdf', disposition: 'attachment' }]);
    expect(sendgrid.state.mails.at(-1)!.body.attachments).toEqual(sent.attachments); // the fake took it

    const mg = await steps.runners.communicate(
      { channel: 'email', provider: 'mailgun', to: 'ops@example.com', subject: 'Weekly report', text: 'attached', attachments: [{ step: 'report', filename: 'partners-{{ inputs.channel | remove: "#" }}.pdf' }] },
      withReport,
      ctxOf('vendor-1'),
    );
    expect(mg).toMatchObject({ provider: 'mailgun', attachments: ['partners-partners.pdf'] });
    expect(mailgun.state.received.at(-1)!.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    const msg = mailgun.state.messages.at(-1)!;
    expect(msg.fields).toMatchObject({ subject: ['Weekly report'], text: ['attached'] });
    expect(msg.files).toHaveLength(1);
    expect(msg.files[0]).toMatchObject({ field: 'attachment', filename: 'partners-partners.pdf', type: 'application/pdf' });
    expect(msg.files[0]!.bytes.equals(bytes)).toBe(true);

    // a step without a file, an unknown step, a path in the name: refused before anything is sent
    const before = sendgrid.state.received.length;
    for (const attachments of [[{ step: 'message' }], [{ step: 'nope' }], [{ step: 'report', filename: '../etc/passwd' }], 'report']) {
      expect(await failure(steps.runners.communicate({ channel: 'email', to: ['ops@example.com'], subject: 'x', text: 'y', attachments }, withReport, ctxOf('vendor-1')))).toMatchObject({ code: 'COMMUNICATE_INVALID', retryable: false });
    }
    expect(sendgrid.state.received.length).toBe(before);
  });

  it('the SendGrid fake refuses attachments SendGrid refuses (content not base64, no filename)', async () => {
    const res = await fetch(`${sendgrid.url}/v3/mail/send`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SENDGRID_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        personalizations: [{ to: [{ email: 'ops@example.com' }] }],
        from: { email: 'partners@example.com' },
        subject: 's',
        content: [{ type: 'text/plain', value: 'v' }],
        attachments: [{ content: 'not base64!', filename: 'a.pdf' }, { content: 'JVBERi0=' }],
      }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { errors: Array<{ field: string }> };
    expect(body.errors.map((e) => e.field)).toEqual(['attachments.0.content', 'attachments.1.filename']);
  });

  it('classifies SendGrid and Mailgun refusals: bad request terminal, 429 retryable with the reset time, a revoked key terminal', async () => {
    expect(await failure(steps.runners.communicate({ channel: 'email', to: ['not-an-address'], subject: 'x', text: 'y' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'VALIDATION', retryable: false, message: expect.stringContaining('personalizations.0.to') });
    sendgrid.control.setRateLimit({ limit: 0, windowMs: 5000 });
    const limited = await failure(steps.runners.communicate({ channel: 'email', to: ['ops@example.com'], subject: 'x', text: 'y' }, scope, ctxOf('vendor-1')));
    sendgrid.control.setRateLimit(undefined);
    expect(limited).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    expect((limited as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
    expect((limited as { retryAfterMs: number }).retryAfterMs).toBeLessThanOrEqual(6000);
    mailgun.control.revoke(MAILGUN_KEY);
    expect(await failure(steps.runners.communicate({ channel: 'email', provider: 'mailgun', to: 'a@example.com', subject: 'x', text: 'y' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'REAUTHORIZATION_REQUIRED', retryable: false });
    sendgrid.control.fail({ status: 503, count: 1, retryAfterSeconds: 3 });
    expect(await failure(steps.runners.communicate({ channel: 'email', to: ['ops@example.com'], subject: 'x', text: 'y' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'UNAVAILABLE', retryable: true, retryAfterMs: 3000 });
  });
});

describe('communicate: chat', () => {
  it("posts to Slack's chat.postMessage with the bot token, carrying the idempotency key in the message metadata", async () => {
    const ctx = ctxOf('vendor-1');
    const out = await steps.runners.communicate({ channel: 'chat', to: '{{ inputs.channel }}', text: '{{ steps.message.output }}' }, scope, ctx);
    expect(out).toMatchObject({ channel: 'chat', provider: 'slack', conversation: 'C0PARTNERS', ts: expect.stringMatching(/^\d+\.\d{6}$/) });
    expect(slack.state.posts.at(-1)).toMatchObject({ channel: 'C0PARTNERS', text: '2 integrations need attention', metadata: { event_type: 'concord_playbook_step', event_payload: { idempotency_key: ctx.idempotencyKey } } });
    expect(slack.state.received.at(-1)!.headers.authorization).toBe(`Bearer ${SLACK_TOKEN}`);
  });

  it("classifies Slack's ok:false answers and its 429", async () => {
    expect(await failure(steps.runners.communicate({ channel: 'chat', to: '#nowhere', text: 'x' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'NOT_FOUND', retryable: false, message: 'slack: channel_not_found' });
    slack.control.setRateLimit({ limit: 0, windowMs: 2000 });
    const limited = await failure(steps.runners.communicate({ channel: 'chat', to: '#partners', text: 'x' }, scope, ctxOf('vendor-1')));
    slack.control.setRateLimit(undefined);
    expect(limited).toMatchObject({ code: 'RATE_LIMITED', retryable: true, retryAfterMs: 2000 });
    slack.control.revoke(SLACK_TOKEN);
    expect(await failure(steps.runners.communicate({ channel: 'chat', to: '#partners', text: 'x' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'REAUTHORIZATION_REQUIRED', retryable: false, message: 'slack: token_revoked' });
  });

  it('posts a MessageCard to the Teams incoming webhook; a throttled post (429, or 200 with the error text) is retryable', async () => {
    const out = await steps.runners.communicate({ channel: 'chat', provider: 'teams', title: 'Partner health', text: '{{ steps.message.output }}' }, scope, ctxOf('vendor-1'));
    expect(out).toMatchObject({ provider: 'teams', status: 200 });
    expect(teams.state.cards.at(-1)!.card).toEqual({ '@type': 'MessageCard', '@context': 'https://schema.org/extensions', summary: 'Partner health', title: 'Partner health', text: '2 integrations need attention' });
    teams.control.setRateLimit({ limit: 0, windowMs: 1000 });
    expect(await failure(steps.runners.communicate({ channel: 'chat', provider: 'teams', text: 'x' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    teams.control.setRateLimit(undefined);
    const legacy = await startTeamsFake({ webhooks: ['h2'], throttleAs200: true });
    try {
      legacy.control.setRateLimit({ limit: 0, windowMs: 1000 });
      await steps.vault.put({ tenantId: 'vendor-1', service: 'teams', connectionId: 'legacy' }, { webhookUrl: legacy.webhookUrl('h2') });
      expect(await failure(steps.runners.communicate({ channel: 'chat', provider: 'teams', account: 'legacy', text: 'x' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
    } finally {
      await legacy.close();
    }
  });

  it('never calls a stored Teams URL off the Teams hosts (the default check)', async () => {
    const strict = stepsOver(database); // default provider settings: real hosts only
    await strict.vault.put({ tenantId: 'vendor-1', service: 'teams', connectionId: 'internal' }, { webhookUrl: 'http://169.254.169.254/latest/meta-data' });
    const before = teams.state.received.length;
    expect(await failure(strict.runners.communicate({ channel: 'chat', provider: 'teams', account: 'internal', text: 'x' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'VALIDATION', retryable: false });
    expect(teams.state.received.length).toBe(before);
  });
});

describe('communicate: sms', () => {
  it("sends through Twilio's Messages API (form, Basic AccountSid:AuthToken), one message per recipient", async () => {
    const out = await steps.runners.communicate({ channel: 'sms', to: ['+14155550100', '+14155550101'], text: '{{ steps.message.output }}' }, scope, ctxOf('vendor-1'));
    expect(out).toMatchObject({ channel: 'sms', provider: 'twilio', messages: [{ to: '+14155550100', status: 'queued', sid: expect.stringMatching(/^SM/) }, { to: '+14155550101', status: 'queued' }] });
    const sent = twilio.state.received.at(-1)!;
    expect(sent.path).toBe(`/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`);
    expect(sent.headers.authorization).toBe(`Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`);
    expect(Object.fromEntries(new URLSearchParams(sent.body))).toEqual({ To: '+14155550101', From: '+14155550199', Body: '2 integrations need attention' });
  });

  it("classifies Twilio's error envelope: 21211 and 21610 terminal, 20429 retryable with Retry-After", async () => {
    expect(await failure(steps.runners.communicate({ channel: 'sms', to: '555-0100', text: 'x' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'VALIDATION', retryable: false, message: expect.stringContaining('21211') });
    expect(await failure(steps.runners.communicate({ channel: 'sms', to: '+14155550111', text: 'x' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'RECIPIENT_UNSUBSCRIBED', retryable: false });
    twilio.control.setRateLimit({ limit: 0, windowMs: 4000 });
    const limited = await failure(steps.runners.communicate({ channel: 'sms', to: '+14155550100', text: 'x' }, scope, ctxOf('vendor-1')));
    twilio.control.setRateLimit(undefined);
    expect(limited).toMatchObject({ code: 'RATE_LIMITED', retryable: true, retryAfterMs: 4000, message: expect.stringContaining('20429') });
  });
});

describe('communicate: crm', () => {
  it('creates a Salesforce Task over OAuth 2.0 client credentials (the generic connector); an upsert by the idempotency key makes one record however often it runs', async () => {
    const created = await steps.runners.communicate({ channel: 'crm', object: 'Task', fields: { Subject: 'Partner health', Description: '{{ steps.message.output }}' } }, scope, ctxOf('vendor-1'));
    expect(created).toMatchObject({ channel: 'crm', provider: 'salesforce', object: 'Task', id: expect.stringMatching(/^00T/), created: true });
    const token = salesforce.state.received.find((r) => r.path === '/services/oauth2/token')!;
    expect(Object.fromEntries(new URLSearchParams(token.body))).toMatchObject({ grant_type: 'client_credentials', client_id: SF_CLIENT });
    expect(salesforce.state.records.get('Task')![0]!.fields).toEqual({ Subject: 'Partner health', Description: '2 integrations need attention' });

    const ctx = ctxOf('vendor-1');
    const spec = { channel: 'crm', object: 'Task', upsertBy: 'Concord_Key__c', fields: { Subject: 'Follow up', Description: '{{ steps.message.output }}' } };
    const first = (await steps.runners.communicate(spec, scope, ctx)) as { id: string; created: boolean };
    const again = (await steps.runners.communicate(spec, scope, { ...ctx, attempt: 2 })) as { id: string; created: boolean };
    expect(first.created).toBe(true);
    expect(again).toMatchObject({ id: first.id, created: false });
    expect(salesforce.state.records.get('Task')!.filter((r) => r.fields.Concord_Key__c === ctx.idempotencyKey)).toHaveLength(1);
  });

  it('gets a fresh token when Salesforce drops the session; a missing required field is terminal', async () => {
    salesforce.expireTokens();
    expect(await steps.runners.communicate({ channel: 'crm', fields: { Subject: 'After expiry' } }, scope, ctxOf('vendor-1'))).toMatchObject({ created: true });
    expect(await failure(steps.runners.communicate({ channel: 'crm', object: 'Task', fields: { Description: 'no subject' } }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'VALIDATION', retryable: false });
  });
});

describe('communicate: budgets and breakers (the outbound door\'s shared state)', () => {
  it('opens the breaker after consecutive outages and then fails fast without calling; a probe after the cooldown closes it', async () => {
    const fake = await startSlackFake({ tokens: ['xoxb-breaker'], channels: { '#ops': 'C9' } });
    const run = stepsOver(database, { providers: { slack: { baseUrl: `${fake.url}/api` } }, breaker: { threshold: 3, cooldownMs: 400 } });
    try {
      await run.vault.put({ tenantId: 'vendor-3', service: 'slack', connectionId: 'default' }, { botToken: 'xoxb-breaker' });
      fake.control.fail({ status: 503, count: 3 });
      for (let i = 0; i < 3; i++) expect(await failure(run.runners.communicate({ channel: 'chat', to: '#ops', text: 'x' }, scope, ctxOf('vendor-3')))).toMatchObject({ code: 'UNAVAILABLE', retryable: true });
      const calls = fake.state.received.length;
      const open = await failure(run.runners.communicate({ channel: 'chat', to: '#ops', text: 'x' }, scope, ctxOf('vendor-3')));
      expect(open).toMatchObject({ code: 'CIRCUIT_OPEN', retryable: true });
      expect((open as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(0);
      expect(fake.state.received.length).toBe(calls); // failed fast: the provider was not called
      // another tenant's key is its own: not affected
      await run.vault.put({ tenantId: 'vendor-4', service: 'slack', connectionId: 'default' }, { botToken: 'xoxb-breaker' });
      expect(await run.runners.communicate({ channel: 'chat', to: '#ops', text: 'x' }, scope, ctxOf('vendor-4'))).toMatchObject({ provider: 'slack' });
      await new Promise((r) => setTimeout(r, 450));
      expect(await run.runners.communicate({ channel: 'chat', to: '#ops', text: 'probe' }, scope, ctxOf('vendor-3'))).toMatchObject({ provider: 'slack' });
      expect(await run.runners.communicate({ channel: 'chat', to: '#ops', text: 'closed' }, scope, ctxOf('vendor-3'))).toMatchObject({ provider: 'slack' });
    } finally {
      await fake.close();
    }
  });

  it("a 429 pauses the connection's key: the next send waits out Retry-After instead of calling", async () => {
    const fake = await startSlackFake({ tokens: ['xoxb-pause'], channels: { '#ops': 'C9' } });
    const run = stepsOver(database, { providers: { slack: { baseUrl: `${fake.url}/api` } }, breaker: { threshold: 5, cooldownMs: 1000 } });
    try {
      await run.vault.put({ tenantId: 'vendor-5', service: 'slack', connectionId: 'default' }, { botToken: 'xoxb-pause' });
      fake.control.setRateLimit({ limit: 0, windowMs: 30_000 });
      expect(await failure(run.runners.communicate({ channel: 'chat', to: '#ops', text: 'x' }, scope, ctxOf('vendor-5')))).toMatchObject({ code: 'RATE_LIMITED' });
      fake.control.setRateLimit(undefined);
      const calls = fake.state.received.length;
      const paused = await failure(run.runners.communicate({ channel: 'chat', to: '#ops', text: 'x' }, scope, ctxOf('vendor-5')));
      expect(paused).toMatchObject({ code: 'RATE_LIMITED', retryable: true });
      expect((paused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(20_000);
      expect(fake.state.received.length).toBe(calls);
    } finally {
      await fake.close();
    }
  });
});

describe('communicate: credentials and input', () => {
  it("reads only the tenant's own connections: another tenant has none and is told so", async () => {
    expect(await failure(steps.runners.communicate({ channel: 'chat', to: '#partners', text: 'x' }, scope, ctxOf('vendor-2')))).toMatchObject({ code: 'COMMUNICATE_NOT_CONNECTED', retryable: false });
  });

  it('refuses an unknown channel or provider, and a message with nothing to say', async () => {
    expect(await failure(steps.runners.communicate({ channel: 'fax', to: 'x', text: 'y' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'COMMUNICATE_INVALID' });
    expect(await failure(steps.runners.communicate({ channel: 'email', provider: 'slack', to: 'x', text: 'y' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'COMMUNICATE_INVALID' });
    expect(await failure(steps.runners.communicate({ channel: 'email', to: 'a@example.com', subject: 's' }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'COMMUNICATE_INVALID' });
    expect(await failure(steps.runners.communicate({ channel: 'crm', object: 'Task; DROP', fields: {} }, scope, ctxOf('vendor-1')))).toMatchObject({ code: 'COMMUNICATE_INVALID' });
  });

  it('no credential reaches a log line, a step log or an output', () => {
    const text = logLines.join('\n');
    for (const s of SECRETS) expect(text).not.toContain(s);
  });
});
