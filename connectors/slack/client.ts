/**
 * Slack's `chat.postMessage`: `POST {base}/chat.postMessage` with the bot token as a bearer and a
 * JSON body. Slack answers HTTP 200 for most failures too (`{ ok: false, error: "channel_not_found" }`),
 * and 429 with `Retry-After` when rate limited. Slack does not dedupe posts: the idempotency key
 * travels in the message's `metadata` (event `concord_playbook_step`), where a reader can find it.
 */
import type { CallContext, CredentialsOf } from '../kit/contract.js';
import { authorization } from './auth.js';
import { classifySlack, classifySlackAnswer } from './errors.js';
import { toSlackMessage, type ChatMessage } from './mapping.js';

export interface SlackSettings {
  /** `https://slack.com/api`; the fake's URL in tests. */
  baseUrl: string;
}

export const SLACK_API = 'https://slack.com/api';

export interface Posted {
  channel: string;
  ts: string;
}

export async function postMessage(settings: SlackSettings, creds: CredentialsOf<'oauth2'>, message: ChatMessage, ctx: CallContext): Promise<Posted> {
  let res: Response;
  try {
    res = await fetch(`${settings.baseUrl.replace(/\/+$/, '')}/chat.postMessage`, {
      method: 'POST',
      headers: { authorization: authorization(creds), 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify(toSlackMessage(message, ctx.idempotencyKey)),
      signal: ctx.signal,
    });
  } catch (err) {
    throw classifySlack(err);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const b = body as { ok?: boolean; channel?: string; ts?: string } | undefined;
  if (res.status !== 200 || !b?.ok) throw classifySlackAnswer(res.status, res.headers, body);
  return { channel: String(b.channel), ts: String(b.ts) };
}
