/**
 * A Teams incoming webhook: `POST <webhook URL>` with a JSON MessageCard. The classic connector
 * answers 200 with the body `1`; a Workflows webhook answers 202. The classic one also answers
 * 200 with an error text when Teams itself throttled the post ("... HTTP error 429 ..."), which
 * is a failure, not a delivery. Teams does not dedupe: nothing carries the idempotency key.
 */
import type { CallContext, CredentialsOf } from '../kit/contract.js';
import { checkTeamsUrl, webhookUrl } from './auth.js';
import { classifyTeams, classifyTeamsAnswer } from './errors.js';
import { toMessageCard, type TeamsMessage } from './mapping.js';

export interface TeamsSettings {
  /** Which webhook URLs may be called (default: HTTPS on Microsoft's hosts, `checkTeamsUrl`). */
  checkUrl?: (url: URL) => void;
}

export async function postCard(settings: TeamsSettings, creds: CredentialsOf<'api_key'>, message: TeamsMessage, ctx: CallContext): Promise<{ status: number }> {
  const url = webhookUrl(creds, settings.checkUrl ?? checkTeamsUrl);
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(toMessageCard(message)), signal: ctx.signal, redirect: 'error' });
  } catch (err) {
    throw classifyTeams(err);
  }
  const text = await res.text().catch(() => '');
  if (res.status === 202 || (res.status === 200 && text.trim() === '1')) return { status: res.status };
  throw classifyTeamsAnswer(res.status, res.headers, text);
}
