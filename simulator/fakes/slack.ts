/**
 * Slack's `chat.postMessage` (`POST /api/chat.postMessage`, JSON or form): bearer bot tokens,
 * HTTP 200 with `{ ok: false, error }` for `not_authed`, `invalid_auth`, `token_revoked`,
 * `channel_not_found`, `no_text`; HTTP 429 `{ ok: false, error: "ratelimited" }` with
 * `Retry-After`; and `{ ok: true, channel, ts, message }`. Channels are known by id or `#name`.
 */
import { json, startMessagingFake, type MessagingFake, type MessagingState } from './messaging.js';

export interface SlackFakeState extends MessagingState {
  posts: Array<{ channel: string; ts: string; text: string; metadata?: unknown; token: string }>;
}

export type SlackFake = MessagingFake<SlackFakeState>;

export async function startSlackFake(o: { port?: number; tokens: string[]; channels: Record<string, string> }): Promise<SlackFake> {
  const state: SlackFakeState = { received: [], posts: [] };
  const tokens = new Set(o.tokens);
  const byName = new Map(Object.entries(o.channels).map(([name, id]) => [name.replace(/^#/, ''), id]));
  const ids = new Set(byName.values());
  let seq = 0;
  return startMessagingFake({ port: o.port, faultBody: () => ({ ok: false, error: 'internal_error' }) }, state, (app, limiter) => {
    app.post('/api/chat.postMessage', async (c) => {
      const type = c.req.header('content-type') ?? '';
      const args: Record<string, unknown> = type.includes('application/json') ? ((await c.req.json().catch(() => ({}))) as Record<string, unknown>) : ((await c.req.parseBody()) as Record<string, unknown>);
      const token = /^Bearer (.+)$/i.exec(c.req.header('authorization') ?? '')?.[1] ?? (typeof args.token === 'string' ? args.token : undefined);
      if (!token) return json(c, 200, { ok: false, error: 'not_authed' });
      if (limiter.revoked.has(token)) return json(c, 200, { ok: false, error: 'token_revoked' });
      if (!tokens.has(token)) return json(c, 200, { ok: false, error: 'invalid_auth' });
      const wait = limiter.check(token);
      if (wait > 0) return json(c, 429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(Math.ceil(wait / 1000)) });
      const channel = String(args.channel ?? '');
      const id = ids.has(channel) ? channel : byName.get(channel.replace(/^#/, ''));
      if (!id) return json(c, 200, { ok: false, error: 'channel_not_found' });
      const text = typeof args.text === 'string' ? args.text : '';
      if (!text && !args.blocks && !args.attachments) return json(c, 200, { ok: false, error: 'no_text' });
      if (text.length > 40_000) return json(c, 200, { ok: false, error: 'msg_too_long' });
      const ts = `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`;
      state.posts.push({ channel: id, ts, text, metadata: args.metadata, token });
      return json(c, 200, { ok: true, channel: id, ts, message: { type: 'message', subtype: 'bot_message', text, ts, bot_id: 'B0FAKE' } });
    });
  });
}
