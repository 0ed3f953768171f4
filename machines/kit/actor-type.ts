import type { AnyStateMachine, ContextFrom, EventFromLogic } from 'xstate';

/** A snapshot as persisted by `actor.getPersistedSnapshot()`, after a JSON round trip. */
export interface PersistedSnapshot<TContext = Record<string, unknown>> {
  status: string;
  value: unknown;
  context: TContext;
  children: Record<string, unknown>;
  historyValue?: unknown;
  [key: string]: unknown;
}

/** What the runtime stores in indexed columns beside the snapshot. */
export interface Projection {
  /** Domain status (e.g. ACTIVE), searchable by operators. */
  status: string;
  /** The tenant that owns the actor, if any. */
  tenant?: string | null;
  /** Searchable attributes (GIN-indexed jsonb). */
  attrs?: Record<string, string | number | boolean | null | string[]>;
}

/**
 * One actor type as a machine module exports it: the machine, its version, pure JSON migrations
 * from older versions (`migrations[n]` turns a version-n snapshot into version n+1), and a
 * projection of a snapshot to indexed columns. Generic over its machine, so that whoever holds
 * the definition sends the machine's own events and reads its own context:
 *
 * ```ts
 * export const relationshipType: ActorTypeDefinition<typeof relationshipMachine> = { type: 'relationship', machine: relationshipMachine, version, project };
 * const relationships = host.actor(relationshipType); // send(id, RelationshipEvent), context: RelationshipContext
 * ```
 */
export interface ActorTypeDefinition<TMachine extends AnyStateMachine = AnyStateMachine> {
  type: string;
  machine: TMachine;
  version: number;
  migrations?: Record<number, (snapshot: PersistedSnapshot) => PersistedSnapshot>;
  project(snapshot: PersistedSnapshot): Projection;
}

/** Any actor type, whatever its machine. */
export type AnyActorTypeDefinition = ActorTypeDefinition<AnyStateMachine>;

/** The events an actor type's machine accepts. */
export type EventOf<TDef extends AnyActorTypeDefinition> = EventFromLogic<TDef['machine']>;

/** The context of an actor type's machine. */
export type ContextOf<TDef extends AnyActorTypeDefinition> = ContextFrom<TDef['machine']>;
