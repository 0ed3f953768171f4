/**
 * Webhooks out of the Shopify fake, with Shopify's headers and a base64 HMAC-SHA256 of the raw
 * body bytes; corrupted, duplicated or redelivered on demand.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { FakeClock } from './common.js';

/** One webhook POST the fake made. */
export interface WebhookDelivery {
  to: string;
  topic: string;
  shop: string;
  headers: Record<string, string>;
  body: string;
  /** 0 when the request failed (refused, timed out). */
  status: number;
  error?: string;
  ms: number;
}

export interface SendWebhookOptions {
  to: string;
  secret?: string;
  eventId?: string;
  webhookId?: string;
  triggeredAt?: string;
  apiVersion?: string;
  /** Sign with a wrong signature. */
  corruptSignature?: boolean;
  /** Send the same delivery this many times (true = twice), same ids. */
  duplicate?: boolean | number;
}

/** GraphQL enum `INVENTORY_LEVELS_UPDATE` -> header topic `inventory_levels/update`. */
export function topicHeader(topic: string): string {
  const i = topic.lastIndexOf('_');
  return `${topic.slice(0, i)}/${topic.slice(i + 1)}`.toLowerCase();
}

export class WebhookSender {
  readonly #outgoing = new AbortController();
  readonly #pending = new Set<Promise<unknown>>();
  constructor(
    private readonly clock: FakeClock,
    private readonly secret: string,
    /** Where every delivery is recorded. */
    private readonly log: WebhookDelivery[],
  ) {}

  async send(shop: string, topic: string, payload: unknown, o: SendWebhookOptions): Promise<WebhookDelivery[]> {
    const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
    let hmac = createHmac('sha256', o.secret ?? this.secret).update(Buffer.from(body, 'utf8')).digest('base64');
    if (o.corruptSignature) hmac = (hmac[0] === 'A' ? 'B' : 'A') + hmac.slice(1);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-shopify-topic': topic,
      'x-shopify-hmac-sha256': hmac,
      'x-shopify-shop-domain': shop,
      'x-shopify-api-version': o.apiVersion ?? '2026-04',
      'x-shopify-webhook-id': o.webhookId ?? randomUUID(),
      'x-shopify-triggered-at': o.triggeredAt ?? this.clock.iso(),
      'x-shopify-event-id': o.eventId ?? randomUUID(),
    };
    const times = o.duplicate === true ? 2 : typeof o.duplicate === 'number' ? o.duplicate : 1;
    const out: WebhookDelivery[] = [];
    for (let i = 0; i < times; i++) out.push(await this.#track(this.#deliver(shop, topic, body, headers, o.to)));
    return out;
  }

  /** Sends a delivery again exactly as it was (a Shopify retry: same ids, same Triggered-At, original body). */
  redeliver(d: WebhookDelivery): Promise<WebhookDelivery> {
    return this.#track(this.#deliver(d.shop, d.topic, d.body, d.headers, d.to));
  }

  /** Resolves when every delivery started so far has ended. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Aborts deliveries in flight and waits for them to settle. */
  async close(): Promise<void> {
    this.#outgoing.abort();
    await Promise.allSettled([...this.#pending]);
  }

  async #deliver(shop: string, topic: string, body: string, headers: Record<string, string>, to: string): Promise<WebhookDelivery> {
    const started = performance.now();
    const d: WebhookDelivery = { to, topic, shop, headers, body, status: 0, ms: 0 };
    try {
      // Shopify gives a delivery 5 s in total
      const res = await fetch(to, { method: 'POST', headers, body, signal: AbortSignal.any([this.#outgoing.signal, AbortSignal.timeout(5000)]) });
      d.status = res.status;
      await res.arrayBuffer();
    } catch (err) {
      d.error = err instanceof Error ? err.message : String(err);
    }
    d.ms = performance.now() - started;
    this.log.push(d);
    return d;
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
    return p;
  }
}
