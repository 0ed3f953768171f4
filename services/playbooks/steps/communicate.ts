import { isConnectorError, type ConnectorError } from '../../../connectors/kit/errors.js';
import { invokerOf, type CallContext, type Connector, type ConnectorInvoker, type CredentialsOf } from '../../../connectors/kit/contract.js';
import { createGenericConnector } from '../../../connectors/generic/index.js';
import { createMailgunConnector, MAILGUN_API } from '../../../connectors/mailgun/index.js';
import { createSendGridConnector, SENDGRID_API } from '../../../connectors/sendgrid/index.js';
import { createSlackConnector, SLACK_API } from '../../../connectors/slack/index.js';
import { checkTeamsUrl, createTeamsConnector } from '../../../connectors/teams/index.js';
import { createTwilioConnector, TWILIO_API } from '../../../connectors/twilio/index.js';
import type { CredentialSecret } from '../../integrations/vault.js';
import type { Guard } from './guard.js';
import { renderTemplate } from './liquid.js';
import { renderSpec } from './render.js';
import { StepError, type StepRunContext, type StepRunner } from './types.js';
import { vaultTenant } from './webhook.js';

/**
 * The `communicate` step: a message to people or a record in the CRM, through the connectors
 * (`connectors/<provider>/`), with the tenant's credentials from the vault.
 *
 * ```yaml
 * communicate: { channel: chat, to: "#partners", text: "{{ steps.message.output }}" }                 # Slack
 * communicate: { channel: chat, provider: teams, title: Partner health, text: "{{ steps.message.output }}" }
 * communicate: { channel: email, to: [ops@example.com], subject: Partner health, text: "...", html: "..." }  # SendGrid
 * communicate: { channel: email, provider: mailgun, to: [...], subject: ..., text: ... }
 * communicate: { channel: email, to: [...], subject: Weekly report, text: ..., attachments: [{ step: report }] }  # a pdf template step's file
 * communicate: { channel: sms, to: "+14155550100", text: "..." }                                    # Twilio
 * communicate: { channel: crm, object: Task, fields: { Subject: "...", Description: "..." }, upsertBy: Concord_Key__c }
 * ```
 *
 * `provider` defaults per channel (email: sendgrid, chat: slack, sms: twilio, crm: salesforce);
 * `account` names the connection (default `default`): the vault entry
 * `{ tenant, service: <provider>, connectionId: <account> }`. What each holds:
 *
 * | provider | secret | metadata |
 * |---|---|---|
 * | sendgrid | `apiKey` | `from` (default sender) |
 * | mailgun | `apiKey` | `domain`, `from` |
 * | slack | `botToken` | |
 * | teams | `webhookUrl` | |
 * | twilio | `authToken` | `accountSid`, `from` or `messagingServiceSid`, `keySid` (API key auth) |
 * | salesforce | `clientId`, `clientSecret` | `instanceUrl` (OAuth 2.0 client credentials, through the generic connector) |
 *
 * Budgets and breakers: with `guard` (createServices gives it), each call takes from the
 * connection's key of the outbound door's shared state and reports its outcome (./guard.ts): a
 * breaker opens after `BREAKER_FAILURE_THRESHOLD` consecutive outages (`CIRCUIT_OPEN`,
 * retryable after the cooldown), a 429 pauses the key for its Retry-After.
 *
 * Strings with `{{ }}` are rendered (Liquid) before sending; in an e-mail's `html` every
 * inserted value is HTML-escaped (`{{ steps.report.output | raw }}` inserts an html template's
 * output as is). Failures are the connectors'
 * classified errors as `StepError`s (429 and 5xx retryable with the provider's wait; a revoked
 * credential or a bad recipient not). The idempotency key goes where the provider dedupes: the
 * CRM upsert by an external id field (`upsertBy`) makes a retried step update the record it
 * created instead of creating another; SendGrid, Mailgun and Slack carry it in the message's
 * metadata (custom args, user variables, message metadata) so a duplicate can be recognised;
 * Teams and Twilio take none.
 */

export const CHANNELS = { email: ['sendgrid', 'mailgun'], chat: ['slack', 'teams'], sms: ['twilio'], crm: ['salesforce'] } as const;
export type Channel = keyof typeof CHANNELS;
export type Provider = (typeof CHANNELS)[Channel][number];

export const CommunicateCode = { Invalid: 'COMMUNICATE_INVALID', NotConnected: 'COMMUNICATE_NOT_CONNECTED' } as const;

/** Salesforce instance hosts a stored `instanceUrl` may name (suffix match, HTTPS only). */
export const SALESFORCE_HOSTS = ['.salesforce.com', '.force.com', '.cloudforce.com'];
export const SALESFORCE_API_VERSION = 'v62.0';

export interface CommunicateOptions {
  /** Provider endpoints; the real ones by default (tests point them at the fakes). */
  sendgrid?: { baseUrl: string };
  mailgun?: { baseUrl: string };
  slack?: { baseUrl: string };
  twilio?: { baseUrl: string };
  /** Which Teams webhook URLs may be called (default: HTTPS on Microsoft's webhook hosts). */
  teams?: { checkUrl?: (url: URL) => void };
  /** Which Salesforce instance URLs may be called (default: HTTPS on Salesforce's hosts). */
  salesforce?: { checkUrl?: (url: URL) => void };
  /** Budgets and breakers per (tenant, provider, account), on the outbound door's shared state (./guard.ts). */
  guard?: Guard;
}

/** What the runner needs of the vault. */
export interface CredentialSource {
  get(ref: { tenantId: string; service: string; connectionId: string }): Promise<{ secret: CredentialSecret; metadata: Record<string, unknown> }>;
}

const invalid = (message: string) => new StepError(CommunicateCode.Invalid, message, false);

function checkSalesforceUrl(url: URL): void {
  if (url.protocol !== 'https:' || !SALESFORCE_HOSTS.some((h) => url.hostname.toLowerCase().endsWith(h))) {
    throw invalid(`the connection's instanceUrl ${url.protocol}//${url.hostname} is not a Salesforce host`);
  }
}

const list = (v: unknown, field: string): string[] => {
  const arr = typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v;
  if (!Array.isArray(arr) || arr.length === 0 || !arr.every((x) => typeof x === 'string' && x !== '')) throw invalid(`communicate.${field} must be a string or a non-empty list of strings`);
  return arr as string[];
};
const str = (v: unknown, field: string, required = true): string | undefined => {
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v === '') throw invalid(`communicate.${field} must be a non-empty string`);
  return v;
};
const meta = (m: Record<string, unknown>, k: string): string | undefined => (typeof m[k] === 'string' && m[k] !== '' ? (m[k] as string) : undefined);

function toStepError(err: unknown): StepError {
  if (err instanceof StepError) return err;
  if (isConnectorError(err)) {
    const e = err as ConnectorError;
    return new StepError(e.code, e.message, e.retryable, e.retryAfterMs);
  }
  return new StepError('COMMUNICATE_FAILED', err instanceof Error ? err.message : String(err), true);
}

export function communicateRunner(vault: CredentialSource, o: CommunicateOptions = {}): StepRunner {
  const sendgrid = createSendGridConnector(o.sendgrid ?? { baseUrl: SENDGRID_API });
  const mailgun = createMailgunConnector(o.mailgun ?? { baseUrl: MAILGUN_API });
  const slack = createSlackConnector(o.slack ?? { baseUrl: SLACK_API });
  const teams = createTeamsConnector({ checkUrl: o.teams?.checkUrl ?? checkTeamsUrl });
  const twilio = createTwilioConnector(o.twilio ?? { baseUrl: TWILIO_API });
  const crmCheck = o.salesforce?.checkUrl ?? checkSalesforceUrl;
  // one generic connector per instance, so its client-credentials token is cached across steps
  const crms = new Map<string, ReturnType<typeof createGenericConnector<{ pattern: 'client_credentials'; tokenUrl: string; clientAuth: 'body' }>>>();

  return async (spec, scope, ctx) => {
    const raw = spec as Record<string, unknown> | null;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalid('communicate must be an object: { channel, to, text, ... }');
    // an e-mail's html escapes what it inserts (a partner's name is not markup); `| raw` opts out
    const { html: rawHtml, ...rest } = raw;
    const s = await renderSpec(rest, scope, ctx.signal);
    if (rawHtml !== undefined) s.html = typeof rawHtml === 'string' ? await renderTemplate(rawHtml, scope, { escape: 'html', signal: ctx.signal }) : rawHtml;
    const channel = s.channel as Channel;
    if (typeof channel !== 'string' || !Object.hasOwn(CHANNELS, channel)) throw invalid(`communicate.channel must be one of ${Object.keys(CHANNELS).join(', ')}`);
    const provider = (s.provider ?? CHANNELS[channel][0]) as Provider;
    if (!(CHANNELS[channel] as readonly string[]).includes(provider)) throw invalid(`communicate.provider for ${channel} must be one of ${CHANNELS[channel].join(', ')}`);
    const account = str(s.account ?? 'default', 'account')!;
    const stored = await credentials(vault, ctx.tenantId, provider, account);
    const callCtx: CallContext = { signal: ctx.signal, idempotencyKey: ctx.idempotencyKey };
    const key = { tenantId: vaultTenant(ctx.tenantId), provider, account };
    const guarded = (invoke: ConnectorInvoker): ConnectorInvoker => (op, input, cc) => (o.guard ? o.guard(key, () => invoke(op, input, cc), ctx.signal) : invoke(op, input, cc));
    const bound = <A extends 'api_key' | 'oauth2'>(c: Connector<A>, creds: CredentialsOf<A>): ConnectorInvoker => guarded(invokerOf(c, async () => creds));
    try {
      switch (provider) {
        case 'sendgrid':
        case 'mailgun': {
          const apiKey = need(stored.secret, 'apiKey', provider, account);
          const mail = {
            to: list(s.to, 'to'),
            ...(s.cc !== undefined ? { cc: list(s.cc, 'cc') } : {}),
            ...(s.bcc !== undefined ? { bcc: list(s.bcc, 'bcc') } : {}),
            from: str(s.from ?? meta(stored.metadata, 'from'), 'from (or the connection\'s metadata.from)')!,
            subject: str(s.subject, 'subject')!,
            ...(s.text !== undefined ? { text: str(s.text, 'text')! } : {}),
            ...(s.html !== undefined ? { html: str(s.html, 'html')! } : {}),
            ...(typeof s.replyTo === 'string' ? { replyTo: s.replyTo } : {}),
          };
          if (mail.text === undefined && mail.html === undefined) throw invalid('communicate needs text or html for an e-mail');
          const files = s.attachments === undefined ? [] : attachmentsOf(s.attachments, scope);
          if (files.length) Object.assign(mail, { attachments: files });
          if (provider === 'sendgrid') {
            const out = (await bound(sendgrid, { apiKey })('send', mail, callCtx)) as { messageId: string | null };
            ctx.log(`e-mail accepted by sendgrid for ${mail.to.length} recipient(s)`, { provider, messageId: out.messageId, attachments: files.length });
            return { channel, provider, messageId: out.messageId, recipients: mail.to.length, attachments: files.map((f) => f.filename) };
          }
          const domain = str(s.domain ?? meta(stored.metadata, 'domain'), 'domain (or the connection\'s metadata.domain)')!;
          const out = (await bound(mailgun, { apiKey })('send', { ...mail, domain }, callCtx)) as { id: string };
          ctx.log(`e-mail queued by mailgun for ${mail.to.length} recipient(s)`, { provider, messageId: out.id, attachments: files.length });
          return { channel, provider, messageId: out.id, recipients: mail.to.length, attachments: files.map((f) => f.filename) };
        }
        case 'slack': {
          const accessToken = need(stored.secret, 'botToken', provider, account);
          const message = { channel: str(s.to, 'to (a Slack channel)')!, text: str(s.text, 'text')!, ...(Array.isArray(s.blocks) ? { blocks: s.blocks as unknown[] } : {}), ...(typeof s.threadTs === 'string' ? { threadTs: s.threadTs } : {}) };
          const out = (await bound(slack, { accessToken })('postMessage', message, callCtx)) as { channel: string; ts: string };
          ctx.log(`posted to slack ${out.channel}`, { provider, channel: out.channel, ts: out.ts });
          return { channel, provider, conversation: out.channel, ts: out.ts };
        }
        case 'teams': {
          const apiKey = need(stored.secret, 'webhookUrl', provider, account);
          const message = { text: str(s.text, 'text')!, ...(typeof s.title === 'string' ? { title: s.title } : {}), ...(typeof s.themeColor === 'string' ? { themeColor: s.themeColor } : {}) };
          const out = (await bound(teams, { apiKey })('postMessage', message, callCtx)) as { status: number };
          ctx.log('posted to teams', { provider, status: out.status });
          return { channel, provider, status: out.status };
        }
        case 'twilio': {
          const apiKey = need(stored.secret, 'authToken', provider, account);
          const accountSid = str(meta(stored.metadata, 'accountSid'), `accountSid (metadata of the twilio connection '${account}')`)!;
          const from = (s.from as string | undefined) ?? meta(stored.metadata, 'from');
          const messagingServiceSid = meta(stored.metadata, 'messagingServiceSid');
          if (!from && !messagingServiceSid) throw invalid('communicate.from (or the connection\'s metadata.from or messagingServiceSid) is needed for an SMS');
          const body = str(s.text, 'text')!;
          const keySid = meta(stored.metadata, 'keySid');
          const sent: Array<{ sid: string; status: string; to: string }> = [];
          const recipients = list(s.to, 'to');
          for (const [i, to] of recipients.entries()) {
            const input = { accountSid, to, body, ...(from ? { from } : {}), ...(messagingServiceSid ? { messagingServiceSid } : {}), ...(keySid ? { keySid } : {}) };
            const out = (await bound(twilio, { apiKey })('send', input, { ...callCtx, idempotencyKey: recipients.length > 1 ? `${ctx.idempotencyKey}:${i}` : ctx.idempotencyKey })) as { sid: string; status: string; to: string };
            sent.push({ sid: out.sid, status: out.status, to: out.to });
          }
          ctx.log(`sms queued by twilio for ${sent.length} recipient(s)`, { provider, sids: sent.map((x) => x.sid) });
          return { channel, provider, messages: sent };
        }
        case 'salesforce':
          return await crm(s, stored, account, ctx, callCtx, guarded);
      }
    } catch (err) {
      throw toStepError(err);
    }
  };

  async function crm(s: Record<string, unknown>, stored: { secret: CredentialSecret; metadata: Record<string, unknown> }, account: string, ctx: StepRunContext, callCtx: CallContext, guarded: (i: ConnectorInvoker) => ConnectorInvoker) {
    const clientId = need(stored.secret, 'clientId', 'salesforce', account);
    const clientSecret = need(stored.secret, 'clientSecret', 'salesforce', account);
    const instance = str(meta(stored.metadata, 'instanceUrl'), `instanceUrl (metadata of the salesforce connection '${account}')`)!;
    let url: URL;
    try {
      url = new URL(instance);
    } catch {
      throw invalid('the salesforce connection\'s instanceUrl is not a URL');
    }
    crmCheck(url);
    const object = str(s.object ?? 'Task', 'object')!;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,79}$/.test(object)) throw invalid('communicate.object must be a Salesforce object name (e.g. Task, Contact)');
    if (!s.fields || typeof s.fields !== 'object' || Array.isArray(s.fields)) throw invalid('communicate.fields must be an object of field: value');
    const upsertBy = s.upsertBy === undefined ? undefined : str(s.upsertBy, 'upsertBy')!;
    if (upsertBy !== undefined && !/^[A-Za-z][A-Za-z0-9_]{0,79}$/.test(upsertBy)) throw invalid('communicate.upsertBy must be an external id field name');
    const base = url.origin;
    let connector = crms.get(base);
    if (!connector) {
      connector = createGenericConnector({ id: 'crm', name: 'salesforce', baseUrl: `${base}/services/data/${SALESFORCE_API_VERSION}`, auth: { pattern: 'client_credentials', tokenUrl: `${base}/services/oauth2/token`, clientAuth: 'body' } });
      crms.set(base, connector);
    }
    const invoke = guarded(invokerOf(connector, async () => ({ clientId, clientSecret })));
    const input = upsertBy
      ? { method: 'PATCH', path: `/sobjects/${object}/${upsertBy}/${encodeURIComponent(ctx.idempotencyKey)}`, body: s.fields }
      : { method: 'POST', path: `/sobjects/${object}`, body: s.fields };
    const out = (await invoke('request', input, callCtx)) as { status: number; body: { id?: string; created?: boolean } };
    const created = out.body.created ?? out.status === 201;
    ctx.log(`salesforce ${object} ${created ? 'created' : 'updated'}: ${out.body.id}`, { provider: 'salesforce', object, id: out.body.id, created });
    return { channel: 'crm', provider: 'salesforce', object, id: out.body.id ?? null, created };
  }
}

/** At most this many files per e-mail, and this many bytes in all (SendGrid takes 30 MB, Mailgun 25 MB). */
const MAX_ATTACHMENTS = 10;
const MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * An e-mail's `attachments`: each names a step whose output is a file (a `template` step with
 * `format: pdf` answers `{ contentType, filename, base64 }`), optionally with another filename:
 * `attachments: [{ step: report, filename: weekly.pdf }]`.
 */
function attachmentsOf(value: unknown, scope: Parameters<StepRunner>[1]): Array<{ filename: string; type: string; content: string }> {
  if (!Array.isArray(value)) throw invalid('communicate.attachments must be a list of { step, filename? }');
  if (value.length > MAX_ATTACHMENTS) throw invalid(`communicate.attachments has ${value.length} files; at most ${MAX_ATTACHMENTS}`);
  let total = 0;
  return value.map((a: unknown, i) => {
    const at = `communicate.attachments[${i}]`;
    if (!a || typeof a !== 'object' || Array.isArray(a)) throw invalid(`${at} must be { step, filename? }`);
    const { step, filename, ...other } = a as Record<string, unknown>;
    if (Object.keys(other).length) throw invalid(`${at} has unknown fields: ${Object.keys(other).join(', ')}`);
    if (typeof step !== 'string' || !Object.hasOwn(scope.steps, step)) throw invalid(`${at}.step must name an earlier step`);
    const out = scope.steps[step]!.output as { contentType?: unknown; filename?: unknown; base64?: unknown } | null;
    if (!out || typeof out !== 'object' || typeof out.base64 !== 'string' || typeof out.contentType !== 'string' || !BASE64.test(out.base64)) {
      throw invalid(`${at}: step '${step}' has no file output (a template step with format: pdf makes one; its status is ${scope.steps[step]!.status})`);
    }
    const name = filename ?? out.filename;
    if (typeof name !== 'string' || name === '' || name.length > 255 || /[\\/\r\n"]/.test(name)) throw invalid(`${at}.filename must be a plain file name`);
    total += Math.floor((out.base64.length * 3) / 4);
    if (total > MAX_ATTACHMENT_BYTES) throw invalid(`communicate.attachments are over ${MAX_ATTACHMENT_BYTES} bytes in all`);
    return { filename: name, type: out.contentType, content: out.base64 };
  });
}

async function credentials(vault: CredentialSource, tenantId: string, provider: Provider, account: string) {
  try {
    return await vault.get({ tenantId: vaultTenant(tenantId), service: provider, connectionId: account });
  } catch (err) {
    if ((err as { code?: string }).code === 'NOT_FOUND') {
      throw new StepError(CommunicateCode.NotConnected, `no ${provider} connection '${account}' is stored for this tenant (vault service '${provider}', connection '${account}')`, false);
    }
    throw err;
  }
}

function need(secret: CredentialSecret, field: string, provider: string, account: string): string {
  const v = secret[field];
  if (typeof v !== 'string' || v === '') throw new StepError(CommunicateCode.NotConnected, `the ${provider} connection '${account}' has no ${field}`, false);
  return v;
}
