import type { ActorEvent, ActorHost, ActorState, ActorView, SendOptions, SendResult } from './actor-host.js';
import type { AnyActorTypeDefinition, ContextOf, EventOf } from './registry.js';

/**
 * The actors of one type, typed by their definition: events are the machine's own event union,
 * contexts its own context type. What a service holds instead of the untyped host:
 *
 * ```ts
 * const relationships = host.actor(relationshipType);
 * const r = await relationships.send(id, { type: 'relationship.activate', at, by }); // r.context: RelationshipContext
 * ```
 *
 * The one cast from the stored JSON to the machine's context is here: a snapshot of this type's
 * actor was written by this type's machine (or upgraded to it by its migrations).
 */
export class ActorHandle<TDef extends AnyActorTypeDefinition> {
  constructor(
    private readonly host: ActorHost,
    readonly def: TDef,
  ) {}

  get type(): string {
    return this.def.type;
  }

  /** Applies `event` to actor `id` (see `ActorHost.send`). */
  send(id: string, event: EventOf<TDef>, opts: SendOptions<ContextOf<TDef>> = {}): Promise<SendResult<ContextOf<TDef>>> {
    // the machine's event union is JSON with a string `type`: exactly what the host takes
    return this.host.send({ type: this.def.type, id }, event as ActorEvent, opts as SendOptions) as Promise<SendResult<ContextOf<TDef>>>;
  }

  /** The current state from this process's cache, else one load (see `ActorHost.current`). */
  current(id: string, opts: { tenant?: string | null } = {}): Promise<ActorState<ContextOf<TDef>> | null> {
    return this.host.current({ type: this.def.type, id }, opts) as Promise<ActorState<ContextOf<TDef>> | null>;
  }

  /** The actor as stored now, read from Postgres (see `ActorHost.get`). */
  get(id: string, opts: { tenant?: string | null } = {}): Promise<ActorView<ContextOf<TDef>>> {
    return this.host.get({ type: this.def.type, id }, opts) as Promise<ActorView<ContextOf<TDef>>>;
  }
}
