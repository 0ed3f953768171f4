/**
 * Webhooks in: `accept(provider, rawBody, headers, query)` checks a delivery, stores it in
 * `integration_webhooks` (one statement: tenant lookup, dedupe, stale check, insert) and answers
 * once that has committed; the connection's actor is handed the row afterwards, off the request.
 *
 * - Shopify: base64 HMAC-SHA256 of the raw body bytes (connectors/shopify/webhooks.ts); the shop
 *   (`X-Shopify-Shop-Domain`) is the connection id of an `integration_credentials` row, which
 *   names the tenant. Duplicates: a repeat of `X-Shopify-Webhook-Id` or `X-Shopify-Event-Id`.
 *   Stale: `X-Shopify-Triggered-At` older than the newest accepted for the same resource.
 * - MercadoLibre: unsigned; our `application_id`, the `secret` query parameter when
 *   ML_WEBHOOK_SECRET is set, and a `user_id` that is a connected seller (the connection id of a
 *   credentials row). Only the ids are kept: the resource is fetched later with the seller's token.
 *
 * @example
 * const outcome = await services.webhooks.accept('shopify', bytes, headers, {});
 * // { status: 'accepted' | 'duplicate' | 'stale', id?: '42' }
 */
import type pg from 'pg';
import { Counter, Histogram, type Registry as MetricsRegistry } from 'prom-client';
import { parseShopifyWebhook, verifyShopifyWebhook } from '../../connectors/shopify/webhooks.js';
import { parseNotification, verifyNotification } from '../../connectors/mercadolibre/webhooks.js';
import type { ActorHost } from '../../runtime/actor-host.js';
import type { Clock } from '../../runtime/clock.js';
import type { ProvidersConfig } from '../../runtime/config.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import { DomainCode, DomainError } from '../common/errors.js';

/** The actor type that owns a connection (built apart); webhooks reach it only when it is registered. */
export const INTEGRATION_ACTOR_TYPE = 'integration';

export type WebhookProvider = 'shopify' | 'mercadolibre';

export interface WebhookOutcome {
  /** `duplicate`: a repeat of a delivery already stored (nothing written). `stale`: stored, never handed on. */
  status: 'accepted' | 'duplicate' | 'stale';
  /** The `integration_webhooks` row (absent for a duplicate). */
  id?: string;
}

/** The event the connection's actor receives for every accepted webhook. */
export interface WebhookReceivedEvent {
  type: 'integration.webhook.received';
  webhookId: string;
  topic: string;
  receivedAt: string;
  [key: string]: unknown;
}

interface Delivery {
  service: WebhookProvider;
  /** Shop domain or seller id: the credentials row's connection id. */
  connectionId: string;
  topic: string;
  deliveryId: string;
  eventId: string | null;
  resource: string | null;
  triggeredAt: string | null;
  payload: unknown;
}

interface Row {
  tenant_id: string | null;
  id: string | null;
  status: 'accepted' | 'stale' | null;
  received_at: Date | null;
}

// One round trip: the connection's tenant, whether either id was seen, the newest Triggered-At
// of the resource (an upsert: its row lock orders racing deliveries of one resource), the insert.
// A repeat that races its original passes `fresh` but loses the insert to the unique indexes.
const ACCEPT = `
WITH conn AS (
  SELECT tenant_id FROM integration_credentials
   WHERE service = $1 AND connection_id = $2
   ORDER BY created_at, tenant_id LIMIT 1
), fresh AS (
  SELECT NOT EXISTS (
    SELECT 1 FROM integration_webhooks w
     WHERE w.service = $1 AND w.connection_id = $2 AND (w.delivery_id = $4 OR w.event_id = $5)
  ) AS fresh
), newest AS (
  INSERT INTO integration_webhook_resources AS r (service, connection_id, resource, newest_triggered_at)
  SELECT $1, $2, $6, $7 FROM conn, fresh
   WHERE fresh.fresh AND $6::text IS NOT NULL AND $7::timestamptz IS NOT NULL
  ON CONFLICT (service, connection_id, resource) DO UPDATE SET newest_triggered_at = EXCLUDED.newest_triggered_at
   WHERE r.newest_triggered_at <= EXCLUDED.newest_triggered_at
  RETURNING 1
), ins AS (
  INSERT INTO integration_webhooks (tenant_id, service, connection_id, topic, delivery_id, event_id, resource, triggered_at, status, payload)
  SELECT conn.tenant_id, $1, $2, $3, $4, $5, $6, $7,
         CASE WHEN $6::text IS NULL OR $7::timestamptz IS NULL OR EXISTS (SELECT 1 FROM newest) THEN 'accepted' ELSE 'stale' END,
         $8::jsonb
    FROM conn
  ON CONFLICT DO NOTHING
  RETURNING id, status, received_at
)
SELECT (SELECT tenant_id FROM conn) AS tenant_id, ins.id::text AS id, ins.status, ins.received_at
  FROM (SELECT 1) one LEFT JOIN ins ON true`;

const HANDED = `
UPDATE integration_webhooks
   SET status = 'handed', handed_at = $2, processing_ms = GREATEST(0, EXTRACT(EPOCH FROM ($2::timestamptz - received_at)) * 1000)
 WHERE id = $1 AND status = 'accepted'`;

export interface WebhookIntakeOptions {
  pool: pg.Pool;
  providers: ProvidersConfig;
  host: ActorHost;
  clock: Clock;
  log: Logger;
  /** How often accepted rows not yet handed on (a crash, an actor type registered late) are swept; 0: never. */
  sweepMs?: number;
}

export class WebhookIntake {
  readonly #inFlight = new Set<Promise<void>>();
  #sweep: NodeJS.Timeout | undefined;
  #metrics: { outcomes: Counter<'service' | 'outcome'>; processing: Histogram<'service'> } | undefined;

  constructor(private readonly o: WebhookIntakeOptions) {}

  /**
   * `concord_webhooks_total{service,outcome}` (accepted, duplicate, stale, refused) and
   * `concord_webhook_processing_seconds{service}`: received -> handed to the connection's actor
   * (also stored per row as `processing_ms`).
   */
  registerMetrics(registry: MetricsRegistry): void {
    this.#metrics = {
      outcomes: new Counter({ name: 'concord_webhooks_total', help: 'Webhooks received, by outcome', labelNames: ['service', 'outcome'] as const, registers: [registry] }),
      processing: new Histogram({
        name: 'concord_webhook_processing_seconds',
        help: 'From a webhook received to it handed to its connection actor',
        labelNames: ['service'] as const,
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300],
        registers: [registry],
      }),
    };
  }

  /**
   * Checks and stores one delivery. Throws a 404 problem for an unknown provider, 503 when the
   * provider's webhook settings are missing, 401 for a bad signature or an unknown shop, seller
   * or application (nothing stored), 400 for a signed delivery that is not a webhook.
   */
  async accept(provider: string, rawBody: Uint8Array, headers: Readonly<Record<string, string | undefined>>, query: Readonly<Record<string, string | undefined>> = {}): Promise<WebhookOutcome> {
    if (provider !== 'shopify' && provider !== 'mercadolibre') throw new DomainError(DomainCode.NotFound, `no webhooks for service '${provider}'`, { service: provider });
    let d: Delivery;
    try {
      d = provider === 'shopify' ? this.#shopify(rawBody, headers) : this.#mercadolibre(rawBody, headers, query);
    } catch (err) {
      if (err instanceof DomainError && err.code === DomainCode.Unauthenticated) this.#metrics?.outcomes.inc({ service: provider, outcome: 'refused' });
      throw err;
    }
    const { rows } = await this.o.pool.query<Row>(ACCEPT, [d.service, d.connectionId, d.topic, d.deliveryId, d.eventId, d.resource, d.triggeredAt, JSON.stringify(d.payload)]);
    const row = rows[0]!;
    if (row.tenant_id === null) {
      this.o.log.warn({ service: d.service, connection: d.connectionId, topic: d.topic }, 'webhook refused: no connection for this account');
      this.#metrics?.outcomes.inc({ service: d.service, outcome: 'refused' });
      throw new DomainError(DomainCode.Unauthenticated, d.service === 'shopify' ? 'unknown shop' : 'unknown seller', { service: d.service });
    }
    this.#metrics?.outcomes.inc({ service: d.service, outcome: row.id === null ? 'duplicate' : row.status! });
    if (row.id === null) return { status: 'duplicate' };
    if (row.status === 'accepted') this.#handOff(row.tenant_id, d.service, d.connectionId, row.id, d.topic, row.received_at!);
    return { status: row.status!, id: row.id };
  }

  /** Sweeps accepted rows left behind by a crash now and then; hands nothing unless the actor type is registered. */
  start(): void {
    const every = this.o.sweepMs ?? 10_000;
    if (every <= 0 || this.#sweep) return;
    void this.sweep();
    this.#sweep = setInterval(() => void this.sweep(), every);
    this.#sweep.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    await this.idle();
  }

  /** Resolves when every hand-off started so far has ended. */
  async idle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Hands every row still `accepted` to its connection's actor (the inbox dedupes a repeat); answers how many it tried. */
  async sweep(limit = 500): Promise<number> {
    if (!this.o.host.registry.has(INTEGRATION_ACTOR_TYPE)) return 0;
    try {
      const { rows } = await this.o.pool.query<{ id: string; tenant_id: string; service: WebhookProvider; connection_id: string; topic: string; received_at: Date }>(
        `SELECT id::text AS id, tenant_id, service, connection_id, topic, received_at FROM integration_webhooks
          WHERE status = 'accepted' ORDER BY received_at, id LIMIT $1`,
        [limit],
      );
      for (const r of rows) this.#handOff(r.tenant_id, r.service, r.connection_id, r.id, r.topic, r.received_at);
      await this.idle();
      return rows.length;
    } catch (err) {
      this.o.log.warn({ err }, 'webhook sweep failed');
      return 0;
    }
  }

  #handOff(tenant: string, service: WebhookProvider, connectionId: string, id: string, topic: string, receivedAt: Date): void {
    const { host, pool, clock, log } = this.o;
    if (!host.registry.has(INTEGRATION_ACTOR_TYPE)) return; // stays `accepted`: the actor picks it up
    const event: WebhookReceivedEvent = { type: 'integration.webhook.received', webhookId: id, topic, receivedAt: receivedAt.toISOString() };
    const p = (async () => {
      try {
        await host.send({ type: INTEGRATION_ACTOR_TYPE, id: `${tenant}:${service}:${connectionId}` }, event, { messageId: `webhook:${id}`, tenant });
        const handedAt = clock.now();
        await pool.query(HANDED, [id, new Date(handedAt)]);
        this.#metrics?.processing.observe({ service }, Math.max(0, handedAt - receivedAt.getTime()) / 1000);
      } catch (err) {
        // left `accepted`: the next sweep tries again, and the actor's inbox dedupes a repeat
        log.warn({ err, webhookId: id, service, connection: connectionId }, 'handing a webhook to its connection failed');
      }
    })();
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  #shopify(body: Uint8Array, headers: Readonly<Record<string, string | undefined>>): Delivery {
    const secret = this.o.providers.shopify.webhookSecret;
    if (!secret) throw new ConcordError(ErrorCode.Unavailable, 'shopify webhooks are not configured: set SHOPIFY_WEBHOOK_SECRET or SHOPIFY_API_SECRET', { missing: ['SHOPIFY_WEBHOOK_SECRET', 'SHOPIFY_API_SECRET'] });
    const request = { body, headers };
    const verdict = verifyShopifyWebhook(request, secret);
    if (!verdict.ok) {
      // never the body: it is unauthenticated input, and may carry a customer's data
      this.o.log.warn({ service: 'shopify', shop: headers['x-shopify-shop-domain'], topic: headers['x-shopify-topic'], reason: verdict.reason }, 'webhook refused: bad signature');
      throw new DomainError(DomainCode.Unauthenticated, 'webhook signature does not verify', { service: 'shopify' });
    }
    let event;
    try {
      event = parseShopifyWebhook(request)[0]!;
    } catch (err) {
      throw new DomainError(DomainCode.ValidationFailed, err instanceof Error ? err.message : 'not a shopify webhook', { service: 'shopify' });
    }
    const triggered = event.triggeredAt !== undefined && Number.isFinite(Date.parse(event.triggeredAt)) ? event.triggeredAt : null;
    return {
      service: 'shopify',
      connectionId: event.shopDomain,
      topic: event.topic,
      deliveryId: event.webhookId,
      eventId: event.eventId ?? null,
      resource: shopifyResource(event.topic, event.payload),
      triggeredAt: triggered,
      payload: event.payload,
    };
  }

  #mercadolibre(body: Uint8Array, headers: Readonly<Record<string, string | undefined>>, query: Readonly<Record<string, string | undefined>>): Delivery {
    const { clientId, webhookSecret } = this.o.providers.mercadolibre;
    if (!clientId) throw new ConcordError(ErrorCode.Unavailable, 'mercadolibre notifications are not configured: set ML_CLIENT_ID', { missing: ['ML_CLIENT_ID'] });
    const request = { body, headers, query };
    const verdict = verifyNotification(request, webhookSecret ?? '', clientId);
    if (!verdict.ok) {
      this.o.log.warn({ service: 'mercadolibre', reason: verdict.reason }, 'webhook refused');
      throw new DomainError(DomainCode.Unauthenticated, 'notification refused', { service: 'mercadolibre' });
    }
    const n = parseNotification(request)[0]!;
    // the body is not signed: keep its ids, never its claims (the resource is fetched with the seller's token)
    return {
      service: 'mercadolibre',
      connectionId: String(n.userId),
      topic: n.topic,
      deliveryId: n.id,
      eventId: null,
      resource: n.resource,
      triggeredAt: null,
      payload: { resource: n.resource, user_id: n.userId, topic: n.topic, attempts: n.attempts, ...(n.actions.length > 0 ? { actions: n.actions } : {}) },
    };
  }
}

/**
 * What a Shopify delivery is about, for the stale check: an inventory level is its item at its
 * location; other records their GID or `<topic's first part>:<id>`; null when it names none.
 */
export function shopifyResource(topic: string, payload: unknown): string | null {
  if (!payload || typeof payload !== 'object') return null;
  const p = payload as Record<string, unknown>;
  const id = (v: unknown) => (typeof v === 'number' || (typeof v === 'string' && v !== '') ? String(v) : undefined);
  const item = id(p.inventory_item_id);
  const location = id(p.location_id);
  if (item && location) return `inventory_level:${item}:${location}`;
  const gid = id(p.admin_graphql_api_id);
  if (gid) return gid;
  const plain = id(p.id);
  return plain ? `${topic.split('/')[0]}:${plain}` : null;
}
