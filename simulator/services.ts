import { randomUUID } from 'node:crypto';
import { SAGA_DEFINITIONS, type SagaDefinition } from '../machines/saga/definitions.js';
import type { Logger } from '../runtime/logger.js';
import type { ServiceLink } from './links.js';
import { seeded } from './random.js';

/**
 * The four outside services (inventory, payment, delivery, notification) as one simulator that
 * speaks Concord's saga contract (docs/saga.md): it hears `<svc>.<service>.<command>`, applies
 * each `commandId` once (a redelivered command gets the first answer again, same `eventId`),
 * and answers on `<svc>.events.<EventName>` after a configurable latency, failing a configurable
 * share of steps with their `*FailedEvent` and ignoring chosen attempts (a service that never
 * answers). Its command table comes from the saga definitions, so a new saga type is simulated
 * without new code.
 *
 * It keeps a ledger for tests: every command applied, every duplicate, every compensation and
 * whether the step it undoes was applied.
 */

export interface SimulatorBehavior {
  /** Delay before each answer: fixed, or uniform in [min, max]. */
  latencyMs?: number | { min: number; max: number };
  /** Share (0..1) of a step's commands answered with its `*FailedEvent`, by step name. */
  failureRate?: Record<string, number>;
  /** Ignore the first n attempts of a step or compensation (Infinity: never answer), by name. */
  silentAttempts?: Record<string, number>;
}

export interface SimulatorOptions extends SimulatorBehavior {
  link: ServiceLink;
  /** First subject tokens (`svc`). */
  servicePrefix: string;
  log?: Logger;
  /** Seed of the failure draws, so a run can be repeated. */
  seed?: number;
  now?: () => number;
  definitions?: SagaDefinition[];
}

interface CommandSpec {
  service: string;
  success: string;
  failure: string | null;
  result: string[];
  compensates: string | null;
}

interface Command {
  commandId: string;
  workflowId: string;
  step: string;
  attempt: number;
  compensates?: string;
  originalCommandIds?: string[];
  [k: string]: unknown;
}

export interface Applied {
  commandId: string;
  workflowId: string;
  step: string;
  attempt: number;
  outcome: 'success' | 'failure';
  event: string;
  compensates: string | null;
  originalCommandIds: string[];
  at: number;
}

const FAILURES: Record<string, { code: string; message: string }> = {
  INVENTORY_RESERVATION: { code: 'OUT_OF_STOCK', message: 'Not enough stock to reserve' },
  PAYMENT_PROCESSING: { code: 'PAYMENT_DECLINED', message: 'Insufficient funds' },
  DELIVERY_SCHEDULING: { code: 'NO_DELIVERY_SLOT', message: 'No delivery slot for this address' },
};


export function commandTable(defs: readonly SagaDefinition[]): Map<string, CommandSpec> {
  const table = new Map<string, CommandSpec>();
  for (const d of defs) {
    for (const s of d.steps) {
      table.set(s.name, { service: s.service, success: s.success, failure: s.failure ?? null, result: s.result, compensates: null });
      if (s.compensation) table.set(s.compensation.name, { service: s.compensation.service, success: s.compensation.success, failure: null, result: [], compensates: s.name });
    }
  }
  return table;
}

export class ServiceSimulator {
  readonly #table: Map<string, CommandSpec>;
  readonly #answers = new Map<string, { subject: string; event: Record<string, unknown> }>();
  readonly #rand: () => number;
  readonly #now: () => number;
  #behavior: SimulatorBehavior;
  /** Applications per command id (never above 1: the dedupe at work). */
  readonly applications = new Map<string, number>();
  readonly applied: Applied[] = [];
  received = 0;
  duplicates = 0;
  ignored = 0;
  answered = 0;

  constructor(private readonly o: SimulatorOptions) {
    this.#table = commandTable(o.definitions ?? Object.values(SAGA_DEFINITIONS));
    this.#rand = seeded(o.seed ?? 1);
    this.#now = o.now ?? Date.now;
    this.#behavior = { latencyMs: o.latencyMs, failureRate: o.failureRate, silentAttempts: o.silentAttempts };
  }

  /** The services this simulator plays. */
  get services(): string[] {
    return [...new Set([...this.#table.values()].map((c) => c.service))].sort();
  }

  async start(): Promise<void> {
    for (const service of this.services) await this.o.link.listen(service, (subject, data, headers) => this.#command(subject, data, headers));
  }

  async stop(): Promise<void> {
    await this.o.link.close();
  }

  /** Changes latency, failure rates or silences from now on. */
  configure(behavior: SimulatorBehavior): void {
    this.#behavior = { ...this.#behavior, ...behavior };
  }

  async #command(subject: string, data: unknown, headers: Record<string, string> = {}): Promise<void> {
    // a traced command's answer continues its trace, as an instrumented service's would
    const trace: Record<string, string> = headers.traceparent ? { traceparent: headers.traceparent } : {};
    const cmd = data as Command | null;
    if (!cmd || typeof cmd.commandId !== 'string' || typeof cmd.step !== 'string') {
      this.o.log?.warn({ subject }, 'simulator: not a saga command');
      return;
    }
    this.received++;
    const first = this.#answers.get(cmd.commandId);
    if (first) {
      // dedupe on commandId: the same answer (same eventId) again, nothing applied
      this.duplicates++;
      await this.o.link.publish(first.subject, first.event, String(first.event.eventId), trace);
      return;
    }
    const spec = this.#table.get(cmd.step);
    if (!spec) {
      this.o.log?.warn({ subject, step: cmd.step }, 'simulator: unknown step');
      return;
    }
    const silent = this.#behavior.silentAttempts?.[cmd.step] ?? 0;
    if (cmd.attempt <= silent) {
      this.ignored++;
      return;
    }
    const fail = spec.failure !== null && this.#rand() < (this.#behavior.failureRate?.[cmd.step] ?? 0);
    const base = { eventId: randomUUID(), workflowId: cmd.workflowId, commandId: cmd.commandId };
    let event: Record<string, unknown>;
    if (fail) {
      const f = FAILURES[cmd.step] ?? { code: `${cmd.step}_FAILED`, message: `${cmd.step} failed` };
      event = { type: spec.failure, ...base, error: { code: f.code, message: f.message, details: { attempt: cmd.attempt } } };
    } else {
      event = { type: spec.success, ...base, ...this.#result(spec) };
    }
    const subject2 = `${this.o.servicePrefix}.events.${event.type as string}`;
    this.#answers.set(cmd.commandId, { subject: subject2, event });
    this.applications.set(cmd.commandId, (this.applications.get(cmd.commandId) ?? 0) + 1);
    this.applied.push({
      commandId: cmd.commandId,
      workflowId: cmd.workflowId,
      step: cmd.step,
      attempt: cmd.attempt,
      outcome: fail ? 'failure' : 'success',
      event: event.type as string,
      compensates: spec.compensates,
      originalCommandIds: Array.isArray(cmd.originalCommandIds) ? cmd.originalCommandIds : [],
      at: this.#now(),
    });
    const delay = this.#latency();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    event.timestamp = new Date(this.#now()).toISOString();
    await this.o.link.publish(subject2, event, String(event.eventId), trace);
    this.answered++;
  }

  #result(spec: CommandSpec): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const f of spec.result) out[f] = f === 'estimatedDelivery' ? new Date(this.#now() + 3 * 86_400_000).toISOString() : randomUUID();
    return out;
  }

  #latency(): number {
    const l = this.#behavior.latencyMs ?? 0;
    if (typeof l === 'number') return l;
    return l.min + Math.floor(this.#rand() * (l.max - l.min + 1));
  }

  /**
   * What the contract promises, checked on the ledger: no command applied twice, and no
   * compensation of a step that never succeeded here (a step that failed is never undone).
   */
  audit(): { appliedTwice: string[]; compensationWithoutStep: Applied[]; compensationOfFailedStep: Applied[] } {
    const succeeded = new Set(this.applied.filter((a) => a.compensates === null && a.outcome === 'success').map((a) => a.commandId));
    const failed = new Set(this.applied.filter((a) => a.compensates === null && a.outcome === 'failure').map((a) => a.commandId));
    const comps = this.applied.filter((a) => a.compensates !== null);
    return {
      appliedTwice: [...this.applications].filter(([, n]) => n > 1).map(([id]) => id),
      compensationWithoutStep: comps.filter((c) => !c.originalCommandIds.some((id) => succeeded.has(id))),
      compensationOfFailedStep: comps.filter((c) => c.originalCommandIds.length > 0 && c.originalCommandIds.every((id) => failed.has(id))),
    };
  }

  /** The ledger of one workflow, in the order commands were applied. */
  ledgerOf(workflowId: string): Applied[] {
    return this.applied.filter((a) => a.workflowId === workflowId);
  }
}
