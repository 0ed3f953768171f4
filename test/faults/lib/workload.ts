import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import type pg from 'pg';
import type { SagaContext } from '../../../machines/saga/index.js';
import { orderData, type OrderRequest } from '../../../services/saga/order.js';
import type { SagaService } from '../../../services/saga/index.js';
import type { ServiceSimulator } from '../../../simulator/services.js';
import type { Operation } from './history.js';

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The faults' scenarios' one row of the table `npm run faults` prints. */
export interface ScenarioRow {
  scenario: string;
  operations: number;
  faults: number;
  lost: number;
  duplicated: number;
  reordered: number;
  stuck: number;
  /** What else the scenario measured (HTTP answers while PostgreSQL was down, the drain time...). */
  notes: string;
}

/**
 * Tally traffic as outside publishers send it: `sources` loops, each publishing its own sequence
 * in order (the next only after the last one's PubAck; a publish that fails is retried under the
 * same Nats-Msg-Id, so JetStream dedupes a retry whose first try was stored). Half the sources
 * send straight to a tally; the other half are hub tallies, which fan each message out through
 * their outbox and the relay, so outbox relays flow too. Operation ids are the tallies' entries
 * (`<source>:<seq>`).
 */
export class TallyTraffic {
  readonly operations: Operation[] = [];
  #stop = false;
  #runs: Promise<void>[] = [];
  #conns: NatsConnection[] = [];
  publishFailures = 0;

  constructor(
    private readonly o: { url: string; prefix: string; sources: number; actors: number; perSourcePerSecond: number; publishTimeoutMs?: number },
  ) {}

  async start(): Promise<void> {
    for (let s = 0; s < this.o.sources; s++) {
      const nc = await connect({ servers: this.o.url.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
      this.#conns.push(nc);
      this.#runs.push(this.#source(nc, s % 2 === 0 ? `d${s}` : `h${s}`, s % 2 !== 0));
    }
  }

  async #source(nc: NatsConnection, source: string, hub: boolean): Promise<void> {
    const js = jetstream(nc, { timeout: this.o.publishTimeoutMs ?? 5_000 });
    const every = 1_000 / this.o.perSourcePerSecond;
    const t0 = performance.now();
    for (let seq = 1; !this.#stop; seq++) {
      const due = t0 + seq * every;
      if (due > performance.now()) await sleep(due - performance.now());
      const target = `a${(seq * 7 + source.length * 13 + Number(source.slice(1)) * 31) % this.o.actors}`;
      const subject = `${this.o.prefix}.actor.tally.${hub ? source : target}`;
      const event = hub ? { type: 'tally.fanout', to: [target], seq } : { type: 'tally.add', seq, source };
      const op: Operation = { id: `${source}:${seq}`, target, source, seq, acked: false };
      this.operations.push(op);
      for (let attempt = 1; attempt <= 40; attempt++) {
        try {
          await js.publish(subject, enc.encode(JSON.stringify(event)), { msgID: `${this.o.prefix}-${source}-${seq}` });
          op.acked = true;
          break;
        } catch {
          this.publishFailures++;
          if (this.#stop) break;
          await sleep(Math.min(1_000, 100 * attempt));
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#runs);
    await Promise.all(this.#conns.map((nc) => nc.close().catch(() => undefined)));
  }
}

/** Every tally's entries, by actor id (the `applied` of a history). */
export async function tallyEntries(pool: pg.Pool): Promise<Map<string, string[]>> {
  const { rows } = await pool.query<{ id: string; entries: string[] }>(`SELECT id, snapshot->'context'->'entries' AS entries FROM actors WHERE type = 'tally'`);
  return new Map(rows.map((r) => [r.id, r.entries]));
}

let orders = 0;
/** An order request as the spec shows it (the body of `POST /api/v1/workflows/order/start`), with a fresh orderId. */
export function anOrderRequest(): OrderRequest {
  orders++;
  return {
    orderId: `order-${process.pid}-${orders}-${randomUUID().slice(0, 8)}`,
    customerId: '123e4567-e89b-12d3-a456-426614174000',
    items: [{ productId: '789e0123-e89b-12d3-a456-426614174000', quantity: 2, price: 29.99 }],
    paymentMethod: { type: 'CREDIT_CARD', token: 'tok_1234567890' },
    shippingAddress: { street: '123 Main St', city: 'New York', state: 'NY', zipCode: '10001', country: 'US' },
  };
}

/** A fresh order as saga data. */
export const anOrder = (): Record<string, unknown> => orderData(anOrderRequest());

export const FINAL_SAGA = ['COMPLETED', 'FAILED'];

/** Sagas in a state they should not be in after the drain, and compensations that went wrong. */
export async function sagaProblems(pool: pg.Pool, workflowIds: readonly string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string; status: string; ctx: SagaContext }>(`SELECT id, status, snapshot->'context' AS ctx FROM actors WHERE type = 'saga' AND id = ANY($1::text[])`, [workflowIds]);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const out: string[] = [];
  for (const id of workflowIds) {
    const r = byId.get(id);
    if (!r) out.push(`saga ${id}: missing`);
    else if (r.status === 'FAILED') {
      const failedAt = r.ctx.steps.findIndex((s) => s.status === 'FAILED');
      if (!r.ctx.steps.slice(0, failedAt).every((s) => s.status === 'COMPENSATED')) out.push(`saga ${id}: FAILED with completed steps not compensated`);
    } else if (r.status !== 'COMPLETED') out.push(`saga ${id}: ${r.status}`);
  }
  return out;
}

/** The simulator's applications per `<workflow>/<step>/<attempt>` (more than one is an effect taken twice). */
export function sagaEffects(sim: ServiceSimulator): Map<string, number> {
  const m = new Map<string, number>();
  for (const a of sim.applied) m.set(`${a.workflowId}/${a.step}/${a.attempt}`, (m.get(`${a.workflowId}/${a.step}/${a.attempt}`) ?? 0) + 1);
  for (const id of sim.audit().appliedTwice) m.set(`command ${id}`, 2);
  return m;
}

/** Starts `count` order sagas spread over `durationMs`; a start that fails is retried (the start is idempotent per order). */
export async function startSagas(sagas: Pick<SagaService, 'start'>, count: number, durationMs: number, started: string[]): Promise<void> {
  const every = durationMs / Math.max(1, count);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      await sleep(Math.max(0, t0 + i * every - performance.now()));
      const data = anOrder();
      for (let attempt = 1; ; attempt++) {
        try {
          const r = await sagas.start('ORDER_FULFILLMENT', data);
          started.push(r.workflowId);
          return;
        } catch (err) {
          if (attempt >= 60) throw err;
          await sleep(500);
        }
      }
    }),
  );
}
