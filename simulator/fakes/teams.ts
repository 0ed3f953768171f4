/**
 * A Teams incoming webhook (classic connector): `POST /webhookb2/{id}` with a MessageCard. Answers
 * 200 with the body `1`; 400 `Summary or Text is required.` / `Bad payload received by generic
 * incoming webhook.`; 404 for a removed webhook; 413 over 28 KB; and when throttled (more than
 * the limit in the window), 429 with the text Teams gives ("Microsoft Teams endpoint returned
 * HTTP error 429 ..."), or, with `throttleAs200`, the classic connector's 200 carrying that text.
 */
import { startMessagingFake, text, type MessagingFake, type MessagingState } from './messaging.js';

export interface TeamsFakeState extends MessagingState {
  cards: Array<{ webhook: string; card: Record<string, unknown> }>;
}

export type TeamsFake = MessagingFake<TeamsFakeState> & { webhookUrl(id: string): string };

export async function startTeamsFake(o: { port?: number; webhooks: string[]; throttleAs200?: boolean }): Promise<TeamsFake> {
  const state: TeamsFakeState = { received: [], cards: [] };
  const hooks = new Set(o.webhooks);
  const fake = await startMessagingFake({ port: o.port, faultBody: (status) => `fault ${status}` }, state, (app, limiter) => {
    app.post('/webhookb2/:id', async (c) => {
      const id = c.req.param('id');
      if (!hooks.has(id) || limiter.revoked.has(id)) return text(c, 404, 'Webhook not found');
      const wait = limiter.check(id);
      if (wait > 0) {
        const msg = `Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=msgapi-fake,cv=${id}.`;
        return o.throttleAs200 ? text(c, 200, `Webhook message delivery failed with error: ${msg}`) : text(c, 429, msg, { 'retry-after': String(Math.ceil(wait / 1000)) });
      }
      const raw = await c.req.text();
      if (Buffer.byteLength(raw) > 28 * 1024) return text(c, 413, 'Payload too large');
      let card: Record<string, unknown>;
      try {
        card = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        return text(c, 400, 'Bad payload received by generic incoming webhook.');
      }
      if (typeof card.text !== 'string' && typeof card.summary !== 'string') return text(c, 400, 'Summary or Text is required.');
      state.cards.push({ webhook: id, card });
      return text(c, 200, '1');
    });
  });
  return Object.assign(fake, { webhookUrl: (id: string) => `${fake.url}/webhookb2/${id}` });
}
