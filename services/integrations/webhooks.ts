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
  i: number;
  tenant_id: string | null;
  id: string | null;
  status: 'accepted' | 'stale' | null;
  received_at: Date | null;
}

// One round trip for a batch of deliveries (group commit: one statement, one WAL flush): each
// one's tenant, whether either of its ids was seen, the newest Triggered-At of its resource (an
// upsert: its row lock orders racing deliveries of one resource), the insert. A batch never holds
// two deliveries that share a delivery id, an event id or a resource (`#take` keeps them apart),
// so each row is judged exactly as if it came alone. A repeat that races its original passes
// `fresh` but loses the insert to the unique indexes. The two ids are looked up apart, each by
// its whole unique index: an OR of the two let the planner, with no statistics on the table yet
// (autovacuum off, or not yet run), scan every stored webhook of the shop for each delivery.
const ACCEPT = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(i int, service text, connection_id text, topic text, delivery_id text, event_id text, resource text, triggered_at timestamptz, payload jsonb)
), conn AS (
  SELECT x.i, c.tenant_id FROM input x
   CROSS JOIN LATERAL (
     SELECT tenant_id FROM integration_credentials
      WHERE service = x.service AND connection_id = x.connection_id
      ORDER BY created_at, tenant_id LIMIT 1
   ) c
), fresh AS (
  SELECT x.service, x.connection_id, x.resource, x.triggered_at FROM input x JOIN conn ON conn.i = x.i
   WHERE NOT EXISTS (SELECT 1 FROM integration_webhooks w WHERE w.service = x.service AND w.connection_id = x.connection_id AND w.delivery_id = x.delivery_id)
     AND NOT EXISTS (SELECT 1 FROM integration_webhooks w WHERE w.service = x.service AND w.connection_id = x.connection_id AND w.event_id = x.event_id)
), newest AS (
  INSERT INTO integration_webhook_resources AS r (service, connection_id, resource, newest_triggered_at)
  SELECT service, connection_id, resource, triggered_at FROM fresh
   WHERE resource IS NOT NULL AND triggered_at IS NOT NULL
  ON CONFLICT (service, connection_id, resource) DO UPDATE SET newest_triggered_at = EXCLUDED.newest_triggered_at
   WHERE r.newest_triggered_at <= EXCLUDED.newest_triggered_at
  RETURNING r.service, r.connection_id, r.resource
), ins AS (
  INSERT INTO integration_webhooks (tenant_id, service, connection_id, topic, delivery_id, event_id, resource, triggered_at, status, payload)
  SELECT conn.tenant_id, x.service, x.connection_id, x.topic, x.delivery_id, x.event_id, x.resource, x.triggered_at,
         CASE WHEN x.resource IS NULL OR x.triggered_at IS NULL
                OR EXISTS (SELECT 1 FROM newest n WHERE n.service = x.service AND n.connection_id = x.connection_id AND n.resource = x.resource)
              THEN 'accepted' ELSE 'stale' END,
         COALESCE(x.payload, 'null'::jsonb)
    FROM input x JOIN conn ON conn.i = x.i
   ORDER BY x.i
  ON CONFLICT DO NOTHING
  RETURNING id, service, connection_id, delivery_id, status, received_at
)
SELECT x.i, conn.tenant_id, ins.id::text AS id, ins.status, ins.received_at
  FROM input x
  LEFT JOIN conn ON conn.i = x.i
  LEFT JOIN ins ON ins.service = x.service AND ins.connection_id = x.connection_id AND ins.delivery_id = x.delivery_id
 ORDER BY x.i`;

// A delivery alone in its batch (every quiet moment): the same judgement over plain parameters,
// cheaper to run than unpacking a one-row recordset.
const ACCEPT_ONE = `
WITH conn AS (
  SELECT tenant_id FROM integration_credentials
   WHERE service = $1 AND connection_id = $2
   ORDER BY created_at, tenant_id LIMIT 1
), fresh AS (
  SELECT NOT EXISTS (SELECT 1 FROM integration_webhooks w WHERE w.service = $1 AND w.connection_id = $2 AND w.delivery_id = $4)
     AND NOT EXISTS (SELECT 1 FROM integration_webhooks w WHERE w.service = $1 AND w.connection_id = $2 AND w.event_id = $5) AS fresh
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
SELECT 0 AS i, (SELECT tenant_id FROM conn) AS tenant_id, ins.id::text AS id, ins.status, ins.received_at
  FROM (SELECT 1) one LEFT JOIN ins ON true`;

/** Deliveries in one accept statement at most. */
const ACCEPT_BATCH = 64;
/** Accept statements in flight at once; a batch forms only while they are all busy. */
export const ACCEPT_CONCURRENCY = 2;
/**
 * Load shedding: while the oldest delivery waiting for an accept statement has waited longer
 * than this, new deliveries are refused at once with a 503 (Retry-After: 1), before their
 * signature is checked. The provider retries them (Shopify for 48 hours, MercadoLibre for
 * hours), and every delivery already waiting keeps its place, so the answer time stays near
 * this bound instead of growing with the backlog past the providers' own timeouts (Shopify
 * 5 s; MercadoLibre 500 ms, after which it retries anyway).
 */
export const ACCEPT_WAIT_MAX_MS = 1_000;

interface PendingAccept {
  d: Delivery;
  /** When it began to wait (`performance.now()`). */
  since: number;
  /** What the delivery must not share with another in its batch or in flight: its ids and resource. */
  keys: string[];
  resolve: (row: Row) => void;
  reject: (err: unknown) => void;
}

// Every row one batch of hand-offs delivered, marked in one statement.
const HANDED = `
UPDATE integration_webhooks w
   SET status = 'handed', handed_at = h.at, processing_ms = GREATEST(0, EXTRACT(EPOCH FROM (h.at - w.received_at)) * 1000)
  FROM unnest($1::bigint[], $2::timestamptz[]) AS h(id, at)
 WHERE w.id = h.id AND w.status = 'accepted'`;

/** Hand-offs taken off the queue together (one `handed` mark between them). */
const HANDOFF_BATCH = 64;
/** Hand-offs in flight at once: enough for the committer to join their commits, few enough not to crowd accepts out. */
const HANDOFF_CONCURRENCY = 8;
/**
 * Accepts go first: a slice of hand-offs waits while accepts are queued or in flight, but never
 * longer than this, so a steady stream of webhooks cannot starve its own hand-offs.
 */
const HANDOFF_YIELD_MAX_MS = 25;
/**
 * How long a short queue waits for more before it is handed on: at 200 webhooks/s about four
 * more arrive, and their hand-offs then cost one commit and one mark between them, not two each.
 */
const HANDOFF_LINGER_MS = 20;
/** Hand-offs waiting in memory at most; past it a row stays `accepted` for the sweep. */
const HANDOFF_QUEUE_MAX = 10_000;
/** The periodic sweep's rows are at least this old (younger ones are in this process's hand-off queue). */
const SWEEP_MIN_AGE_MS = 30_000;

interface HandOff {
  tenant: string;
  service: WebhookProvider;
  connectionId: string;
  id: string;
  topic: string;
  receivedAt: Date;
}

export interface WebhookIntakeOptions {
  pool: pg.Pool;
  /**
   * Where the accept statements run (default: `pool`): a pool of their own, ACCEPT_CONCURRENCY
   * connections, so an accept never queues for a connection behind the applies, hand-offs and
   * actor commits its own webhooks set off.
   */
  acceptPool?: pg.Pool;
  providers: ProvidersConfig;
  host: ActorHost;
  clock: Clock;
  log: Logger;
  /** How often accepted rows not yet handed on (a crash, an actor type registered late) are swept; 0: never. */
  sweepMs?: number;
  /**
   * Told of every row accepted (after it committed, off the request path): the inventory sync
   * applies stock topics at once, apart from the actor hand-off, and sweeps what it missed.
   */
  onAccepted?: (h: { tenant: string; service: WebhookProvider; connectionId: string; id: string; topic: string }) => void;
}

export class WebhookIntake {
  /** Accepted rows waiting to be handed on, drained off the request path by one loop at a time. */
  readonly #queue: HandOff[] = [];
  /** Deliveries waiting for an accept statement, in arrival order. */
  #pending: PendingAccept[] = [];
  /** Keys (ids, resources) of the deliveries in statements in flight. */
  readonly #busy = new Set<string>();
  #accepting = 0;
  /**
   * What everything waiting for the accepts to go quiet shares: one promise and one timer for all
   * of them (not one timer per accepted webhook), released when the accepts go quiet or
   * `HANDOFF_YIELD_MAX_MS` after the first of them began to wait.
   */
  #quiet: { promise: Promise<void>; release: () => void } | undefined;
  #draining: Promise<void> | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #metrics: { outcomes: Counter<'service' | 'outcome'>; processing: Histogram<'service'> } | undefined;

  constructor(private readonly o: WebhookIntakeOptions) {}

  /**
   * `concord_webhooks_total{service,outcome}` (accepted, duplicate, stale, refused, shed) and
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
   * provider's webhook settings are missing or the accepts are overloaded (ACCEPT_WAIT_MAX_MS),
   * 401 for a bad signature or an unknown shop, seller or application (nothing stored), 400 for
   * a signed delivery that is not a webhook.
   */
  async accept(provider: string, rawBody: Uint8Array, headers: Readonly<Record<string, string | undefined>>, query: Readonly<Record<string, string | undefined>> = {}): Promise<WebhookOutcome> {
    if (provider !== 'shopify' && provider !== 'mercadolibre') throw new DomainError(DomainCode.NotFound, `no webhooks for service '${provider}'`, { service: provider });
    const head = this.#pending[0];
    if (head && performance.now() - head.since > ACCEPT_WAIT_MAX_MS) {
      this.#metrics?.outcomes.inc({ service: provider, outcome: 'shed' });
      throw new ConcordError(ErrorCode.Unavailable, 'webhook intake is overloaded: deliver again shortly', { retryAfter: 1 });
    }
    let d: Delivery;
    try {
      d = provider === 'shopify' ? this.#shopify(rawBody, headers) : this.#mercadolibre(rawBody, headers, query);
    } catch (err) {
      if (err instanceof DomainError && err.code === DomainCode.Unauthenticated) this.#metrics?.outcomes.inc({ service: provider, outcome: 'refused' });
      throw err;
    }
    const row = await this.#store(d);
    if (row.tenant_id === null) {
      this.o.log.warn({ service: d.service, connection: d.connectionId, topic: d.topic }, 'webhook refused: no connection for this account');
      this.#metrics?.outcomes.inc({ service: d.service, outcome: 'refused' });
      throw new DomainError(DomainCode.Unauthenticated, d.service === 'shopify' ? 'unknown shop' : 'unknown seller', { service: d.service });
    }
    this.#metrics?.outcomes.inc({ service: d.service, outcome: row.id === null ? 'duplicate' : row.status! });
    if (row.id === null) return { status: 'duplicate' };
    if (row.status === 'accepted') {
      this.#handOff({ tenant: row.tenant_id, service: d.service, connectionId: d.connectionId, id: row.id, topic: d.topic, receivedAt: row.received_at! });
      const onAccepted = this.o.onAccepted;
      if (onAccepted) {
        const h = { tenant: row.tenant_id, service: d.service, connectionId: d.connectionId, id: row.id, topic: d.topic };
        // after the 200 is on its way, and after the accepts queued behind this one (25 ms at most)
        void this.#acceptsQuiet().then(() => setImmediate(() => onAccepted(h)));
      }
    }
    return { status: row.status!, id: row.id };
  }

  /**
   * Stores one delivery through the group commit: a lone delivery goes at once; while
   * ACCEPT_CONCURRENCY statements are in flight, those arriving meanwhile share the next one.
   */
  #store(d: Delivery): Promise<Row> {
    const scope = `${d.service}\u0000${d.connectionId}\u0000`;
    const keys = [`${scope}d\u0000${d.deliveryId}`];
    if (d.eventId !== null) keys.push(`${scope}e\u0000${d.eventId}`);
    if (d.resource !== null) keys.push(`${scope}r\u0000${d.resource}`);
    return new Promise((resolve, reject) => {
      this.#pending.push({ d, since: performance.now(), keys, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#accepting < ACCEPT_CONCURRENCY && this.#pending.length > 0) {
      const batch = this.#take();
      if (batch.length === 0) return; // every waiting one shares a key with a statement in flight
      this.#accepting++;
      for (const p of batch) for (const k of p.keys) this.#busy.add(k);
      void this.#write(batch).finally(() => {
        for (const p of batch) for (const k of p.keys) this.#busy.delete(k);
        this.#accepting--;
        this.#pump();
        if (this.#accepting === 0 && this.#pending.length === 0) this.#quiet?.release();
      });
    }
  }

  /** Resolves when no accept is queued or in flight, or `HANDOFF_YIELD_MAX_MS` after the first waiter at most. */
  #acceptsQuiet(): Promise<void> {
    if (this.#accepting === 0 && this.#pending.length === 0) return Promise.resolve();
    if (this.#quiet) return this.#quiet.promise;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    const release = () => {
      clearTimeout(timer);
      if (this.#quiet?.promise === promise) this.#quiet = undefined;
      resolve();
    };
    const timer = setTimeout(release, HANDOFF_YIELD_MAX_MS);
    this.#quiet = { promise, release };
    return promise;
  }

  /**
   * The next batch, in arrival order: a delivery that shares a delivery id, event id or resource
   * with one in flight, one already taken, or an earlier one left waiting, waits for a later
   * batch, so deliveries of one key are stored one after the other in the order they came.
   */
  #take(): PendingAccept[] {
    const taken: PendingAccept[] = [];
    const left: PendingAccept[] = [];
    const blocked = new Set<string>();
    for (const p of this.#pending) {
      if (taken.length < ACCEPT_BATCH && !p.keys.some((k) => this.#busy.has(k) || blocked.has(k))) taken.push(p);
      else left.push(p);
      for (const k of p.keys) blocked.add(k);
    }
    this.#pending = left;
    return taken;
  }

  /** One statement for the batch; when it fails, each delivery is tried alone so one bad one cannot fail its neighbours. */
  async #write(batch: PendingAccept[]): Promise<void> {
    try {
      if (batch.length === 1) {
        const { d } = batch[0]!;
        // named: parsed and planned once per connection, not once per webhook
        const { rows } = await (this.o.acceptPool ?? this.o.pool).query<Row>({ name: 'concord_webhook_accept', text: ACCEPT_ONE, values: [d.service, d.connectionId, d.topic, d.deliveryId, d.eventId, d.resource, d.triggeredAt, JSON.stringify(d.payload)] });
        batch[0]!.resolve(rows[0]!);
        return;
      }
      const input = batch.map((p, i) => ({ i, service: p.d.service, connection_id: p.d.connectionId, topic: p.d.topic, delivery_id: p.d.deliveryId, event_id: p.d.eventId, resource: p.d.resource, triggered_at: p.d.triggeredAt, payload: p.d.payload }));
      // named: parsed and planned once per connection, not once per batch
      const { rows } = await (this.o.acceptPool ?? this.o.pool).query<Row>({ name: 'concord_webhook_accept_batch', text: ACCEPT, values: [JSON.stringify(input)] });
      batch.forEach((p, i) => p.resolve(rows[i]!));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      for (const p of batch) await this.#write([p]);
    }
  }

  /** Sweeps accepted rows left behind by a crash now and then; hands nothing unless the actor type is registered. */
  start(): void {
    const every = this.o.sweepMs ?? 10_000;
    if (every <= 0 || this.#sweep) return;
    void this.sweep(); // at start nothing is queued here: every row left `accepted` is an orphan
    this.#sweep = setInterval(() => void this.sweep(500, SWEEP_MIN_AGE_MS), every);
    this.#sweep.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
    await this.idle();
  }

  /** Resolves when every hand-off queued so far has ended. */
  async idle(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /**
   * Hands every row still `accepted` to its connection's actor (the inbox dedupes a repeat);
   * answers how many it tried. The periodic sweep leaves rows younger than `SWEEP_MIN_AGE_MS`
   * alone: those are in this process's hand-off queue (accepts outrun the hand-off while they
   * come fast), and sweeping them too handed every recent webhook twice.
   */
  async sweep(limit = 500, minAgeMs = 0): Promise<number> {
    if (!this.o.host.registry.has(INTEGRATION_ACTOR_TYPE)) return 0;
    try {
      const { rows } = await this.o.pool.query<{ id: string; tenant_id: string; service: WebhookProvider; connection_id: string; topic: string; received_at: Date }>(
        `SELECT id::text AS id, tenant_id, service, connection_id, topic, received_at FROM integration_webhooks
          WHERE status = 'accepted' AND received_at <= now() - make_interval(secs => $2::int / 1000.0) ORDER BY received_at, id LIMIT $1`,
        [limit, Math.max(0, Math.round(minAgeMs))],
      );
      for (const r of rows) this.#handOff({ tenant: r.tenant_id, service: r.service, connectionId: r.connection_id, id: r.id, topic: r.topic, receivedAt: r.received_at });
      await this.idle();
      return rows.length;
    } catch (err) {
      this.o.log.warn({ err }, 'webhook sweep failed');
      return 0;
    }
  }

  /** Queues one accepted row for its connection's actor; the answer to the provider never waits for it. */
  #handOff(h: HandOff): void {
    if (!this.o.host.registry.has(INTEGRATION_ACTOR_TYPE)) return; // stays `accepted`: the actor picks it up
    if (this.#queue.length >= HANDOFF_QUEUE_MAX) return; // stays `accepted`: the next sweep hands it on
    this.#queue.push(h);
    this.#kick();
  }

  /** Starts the drain loop unless it runs; a row queued as it ends starts it again. */
  #kick(): void {
    if (this.#draining || this.#queue.length === 0) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = undefined;
      this.#kick();
    });
  }

  /**
   * Hands queued rows on in batches: the sends of one batch run together (the actor host's
   * committer joins their commits), then one statement marks the delivered ones `handed`. A
   * batch starts at the earliest on the next turn of the event loop, so the 200 that queued a
   * row is written before its hand-off competes with it; a short queue lingers to fill.
   */
  async #drain(): Promise<void> {
    const { host, pool, clock, log } = this.o;
    while (this.#queue.length > 0) {
      if (this.#queue.length < HANDOFF_BATCH) await new Promise((resolve) => setTimeout(resolve, HANDOFF_LINGER_MS));
      else await new Promise((resolve) => setImmediate(resolve));
      const batch = this.#queue.splice(0, HANDOFF_BATCH);
      const handed: Array<{ h: HandOff; at: number }> = [];
      for (let i = 0; i < batch.length; i += HANDOFF_CONCURRENCY) {
        await this.#acceptsQuiet();
        await Promise.all(
          batch.slice(i, i + HANDOFF_CONCURRENCY).map(async (h) => {
            const event: WebhookReceivedEvent = { type: 'integration.webhook.received', webhookId: h.id, topic: h.topic, receivedAt: h.receivedAt.toISOString() };
            try {
              await host.send({ type: INTEGRATION_ACTOR_TYPE, id: `${h.tenant}:${h.service}:${h.connectionId}` }, event, { messageId: `webhook:${h.id}`, tenant: h.tenant });
              handed.push({ h, at: clock.now() });
            } catch (err) {
              // left `accepted`: the next sweep tries again, and the actor's inbox dedupes a repeat
              log.warn({ err, webhookId: h.id, service: h.service, connection: h.connectionId }, 'handing a webhook to its connection failed');
            }
          }),
        );
      }
      if (handed.length === 0) continue;
      try {
        await pool.query({ name: 'concord_webhook_handed', text: HANDED, values: [handed.map((x) => x.h.id), handed.map((x) => new Date(x.at))] });
        for (const { h, at } of handed) this.#metrics?.processing.observe({ service: h.service }, Math.max(0, at - h.receivedAt.getTime()) / 1000);
      } catch (err) {
        // the actors have them; the rows stay `accepted` and a sweep's repeat is deduped by their inboxes
        log.warn({ err, handed: handed.length }, 'marking webhooks handed failed');
      }
    }
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
