import type pg from 'pg';
import type { ActorHandle } from '../../runtime/actor-handle.js';
import type { ActorHost } from '../../runtime/actor-host.js';
import type { Clock } from '../../runtime/clock.js';
import { Grouper } from '../../runtime/grouper.js';
import type { Logger } from '../../runtime/logger.js';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';
import { acceptedEventsOf } from '../../runtime/step.js';
import {
  RELATIONSHIP_ACTIONS,
  relationshipMachine,
  relationshipType,
  statusOf,
  type RelationshipContext,
  type RelationshipEvent,
  type RelationshipStatus,
  type RelationshipType,
} from '../../machines/relationship.js';
import { DEFAULT_EVENTS_ROOT } from '../../machines/lib/events.js';
import { auditExtras, toAuditRow, type AuditRecord, type AuditRow, type AuditWriter } from '../common/audit.js';
import { DomainCode, DomainError } from '../common/errors.js';
import type { KeyedCommand } from '../common/idempotency.js';
import { isPlatform, type Principal } from '../common/principal.js';
import { pageActors } from '../common/sql.js';

type Json = Record<string, unknown>;

/** A relationship as clients see it: the spec's VendorPartnerRelationship plus lifecycle detail. */
export interface Relationship {
  id: string;
  vendorId: string;
  partnerId: string;
  relationshipType: RelationshipType;
  status: RelationshipStatus;
  startDate: string;
  endDate: string | null;
  agreementDetails: Json | null;
  configuration: Json | null;
  metadata: Json | null;
  createdAt: string;
  updatedAt: string;
  version: number;
  allowedActions: string[];
  activatedAt: string | null;
  suspendedAt: string | null;
  terminatedAt: string | null;
  statusReason: string | null;
}

/** What a caller gives to create a relationship: the machine's creating event, less what the service stamps. */
export type CreateRelationship = Omit<Extract<RelationshipEvent, { type: 'relationship.create' }>, 'type' | 'at' | 'by' | 'events'>;

export type UpdateRelationship = Partial<Pick<CreateRelationship, 'agreementDetails' | 'configuration' | 'metadata' | 'endDate'>>;
export type LifecycleAction = 'activate' | 'suspend' | 'terminate';

export interface RelationshipFilter {
  vendorId?: string;
  partnerId?: string;
  relationshipType?: RelationshipType;
  status?: RelationshipStatus;
  limit: number;
  cursor?: string;
}

export interface CallContext {
  principal: Principal;
  requestId?: string | null;
  /** The command's Idempotency-Key: its message id, and its answer stored with the commit. */
  key?: KeyedCommand;
}

const TYPE = 'relationship';

interface StoredRelationship {
  version: number;
  state_value: unknown;
  context: RelationshipContext;
}
const allowedCache = new Map<string, string[]>();

/** The actions the lifecycle allows in a state value (memoised: the chart is fixed per version). */
export function allowedActions(value: unknown, context: RelationshipContext): string[] {
  const key = JSON.stringify(value);
  let hit = allowedCache.get(key);
  if (!hit) {
    const events = acceptedEventsOf(relationshipMachine, { status: 'active', value, context: context as never, children: {} });
    hit = events.map((e) => RELATIONSHIP_ACTIONS[e]).filter((a): a is string => Boolean(a));
    allowedCache.set(key, hit);
  }
  return hit;
}

function render(id: string, version: number, value: unknown, c: RelationshipContext): Relationship {
  return {
    id,
    vendorId: c.vendorId,
    partnerId: c.partnerId,
    relationshipType: c.relationshipType as RelationshipType,
    status: statusOf(value) as RelationshipStatus,
    startDate: c.startDate!,
    endDate: c.endDate,
    agreementDetails: c.agreementDetails,
    configuration: c.configuration,
    metadata: c.metadata,
    createdAt: c.createdAt!,
    updatedAt: c.lastEventAt ?? c.createdAt!,
    version,
    allowedActions: allowedActions(value, c),
    activatedAt: c.activatedAt,
    suspendedAt: c.suspendedAt,
    terminatedAt: c.terminatedAt,
    statusReason: c.statusReason,
  };
}

const canSee = (p: Principal, c: Pick<RelationshipContext, 'vendorId' | 'partnerId'>): boolean =>
  isPlatform(p) || (p.role === 'vendor' && c.vendorId === p.tenantId) || (p.role === 'partner' && c.partnerId === p.tenantId);

const notFound = (id: string) => new ConcordError(ErrorCode.ActorNotFound, `relationship ${id} not found`, { ref: { type: TYPE, id } });

/**
 * Relationships are `relationship` actors: every change is an event through the actor host
 * (one commit per transition, inbox-deduplicated); reads and searches go to the indexed
 * `actors` columns. A vendor or partner sees only relationships it is party to; any other id
 * answers not-found, exactly as an id that does not exist.
 */
export class RelationshipService {
  readonly #actors: ActorHandle<typeof relationshipType>;

  constructor(
    host: ActorHost,
    private readonly pool: pg.Pool,
    private readonly clock: Clock,
    private readonly audit: AuditWriter,
    private readonly log?: Logger,
    /** Subject root of Concord's events (`<NATS_PREFIX>.events`), recorded in each new relationship. */
    private readonly events: string = DEFAULT_EVENTS_ROOT,
  ) {
    this.#actors = host.actor(relationshipType);
  }

  /** Point reads issued in the same moment share one statement (see `Grouper`). */
  readonly #reads = new Grouper<string, StoredRelationship | undefined>(
    async (ids) => {
      const { rows } = await this.pool.query<StoredRelationship & { id: string }>({
        name: 'concord_relationship_get',
        text: `SELECT id, version, state_value, snapshot->'context' AS context FROM actors WHERE type = $1 AND id = ANY($2::text[])`,
        values: [TYPE, ids],
      });
      const byId = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => byId.get(id));
    },
    { maxBatch: 128, concurrency: 1 },
  );

  async get(principal: Principal, id: string): Promise<Relationship> {
    const row = await this.#reads.submit(id);
    if (!row || !canSee(principal, row.context) || statusOf(row.state_value) === 'DRAFT') throw notFound(id);
    return render(id, row.version, row.state_value, row.context);
  }

  async list(principal: Principal, f: RelationshipFilter): Promise<{ data: Relationship[]; nextCursor: string | null }> {
    const { rows, nextCursor } = await pageActors<RelationshipContext>(this.pool, {
      type: TYPE,
      attrs: { vendorId: f.vendorId, partnerId: f.partnerId, relationshipType: f.relationshipType },
      status: f.status,
      principal,
      cursor: f.cursor,
      limit: f.limit,
    });
    return { data: rows.map((r) => render(r.id, r.version, r.state_value, r.context)), nextCursor };
  }

  /** Creates the actor with its first event; a retried create (same derived id) is a duplicate. */
  async create(cx: CallContext, id: string, input: CreateRelationship): Promise<Relationship> {
    const p = cx.principal;
    if (!isPlatform(p) && !canSee(p, input)) {
      throw new DomainError(DomainCode.Forbidden, `a ${p.role} may only create relationships it is party to`);
    }
    const at = new Date(this.clock.now()).toISOString();
    let after: Relationship | undefined;
    const res = await this.#actors.send(id, { type: 'relationship.create', ...input, events: this.events, at, by: p.sub }, {
      messageId: cx.key?.messageId,
      extras: (t) => {
        after = render(id, t.version, t.value, t.context);
        return { ...auditExtras(this.#auditRow(cx, 'relationship.create', null, after, at)), ...cx.key?.answer(after) };
      },
      // the id exists already: only possible for a reused client-derived id
      rejected: () => new DomainError(DomainCode.IdempotencyKeyReused, `relationship ${id} already exists`),
    });
    return res.duplicate ? this.get(p, id) : after!;
  }

  async update(cx: CallContext, id: string, patch: UpdateRelationship): Promise<Relationship> {
    return this.#send(cx, id, (at, by) => ({ type: 'relationship.update', ...patch, at, by }));
  }

  async transition(cx: CallContext, id: string, action: LifecycleAction, reason?: string): Promise<Relationship> {
    return this.#send(cx, id, (at, by) => ({ type: `relationship.${action}`, at, by, ...(reason === undefined ? {} : { reason }) }) as RelationshipEvent);
  }

  async #send(cx: CallContext, id: string, make: (at: string, by: string) => RelationshipEvent): Promise<Relationship> {
    // not-found and party check before any write, on the state the host holds (no read when cached)
    const now = await this.#actors.current(id);
    if (!now || !canSee(cx.principal, now.context) || statusOf(now.value) === 'DRAFT') throw notFound(id);
    const known = render(id, now.version, now.value, now.context);
    const at = new Date(this.clock.now()).toISOString();
    const event = make(at, cx.principal.sub);
    const action = RELATIONSHIP_ACTIONS[event.type];
    let after: Relationship | undefined;
    // the record commits with the change when the version before is the one known here;
    // otherwise (another process moved the relationship on) it is completed after the commit
    const res = await this.#actors.send(id, event, {
      messageId: cx.key?.messageId,
      extras: (t) => {
        after = render(id, t.version, t.value, t.context);
        return { ...auditExtras(known.version === t.version - 1 ? this.#auditRow(cx, event.type, known, after, at) : null), ...cx.key?.answer(after) };
      },
      rejected: (r) => {
        const allowed = r.accepts.map((e) => RELATIONSHIP_ACTIONS[e]).filter(Boolean);
        return new ConcordError(ErrorCode.EventRejected, `relationship ${id} is ${r.status}: '${action}' is not allowed; allowed: ${allowed.join(', ') || 'none'}`, {
          ...r,
          currentStatus: r.status,
          allowedActions: allowed,
          action,
        });
      },
    });
    if (res.duplicate) return this.get(cx.principal, id);
    if (known.version !== res.version - 1) await this.#record(cx, event.type, await this.#versionBefore(id, res.version), after!, at);
    return after!;
  }

  /** The audit record of the version before `version` holds its `after`; else what the journal knows. */
  async #versionBefore(id: string, version: number): Promise<Relationship | { id: string; version: number; status: string } | null> {
    const { rows } = await this.pool.query<{ after: Relationship | null }>(
      `SELECT after FROM audit_log WHERE dedupe_key = $1`,
      [`${TYPE}/${id}@${version - 1}`],
    );
    if (rows[0]?.after) return rows[0].after;
    const j = await this.pool.query<{ state_value: unknown }>(`SELECT state_value FROM journal WHERE actor_type = $1 AND actor_id = $2 AND version = $3`, [TYPE, id, version - 1]);
    return j.rows[0] ? { id, version: version - 1, status: statusOf(j.rows[0].state_value) } : null;
  }

  /** The audit record of a change (committed with its transition, or written by `#record`). */
  #auditRecord(cx: CallContext, action: string, before: unknown, after: Relationship, at: string): AuditRecord {
    return {
      principal: cx.principal,
      action,
      objectType: TYPE,
      objectId: after.id,
      before,
      after,
      at,
      requestId: cx.requestId ?? null,
      dedupeKey: `${TYPE}/${after.id}@${after.version}`,
    };
  }

  /** The audit record of a change, as the row its transition commits with. */
  #auditRow(cx: CallContext, action: string, before: unknown, after: Relationship, at: string): AuditRow {
    return toAuditRow(this.#auditRecord(cx, action, before, after, at));
  }

  /**
   * The transition has committed: a failing audit write must not turn its answer into an error
   * (a retry would then find it done). The journal holds the change; reading the audit log
   * completes the record from it (see `reconcileActorAudit`).
   */
  async #record(cx: CallContext, action: string, before: unknown, after: Relationship, at: string): Promise<void> {
    await this.audit
      .write(this.#auditRecord(cx, action, before, after, at))
      .catch((err: unknown) => this.log?.warn({ err, relationship: after.id, version: after.version }, 'audit write failed; the journal keeps the change'));
  }
}

