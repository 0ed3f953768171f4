import type { ActorTypeDefinition, PersistedSnapshot } from '../machines/kit/actor-type.js';
import { ConcordError, ErrorCode } from './errors.js';

// the actor type definition lives with the machines (which import nothing outside machines/)
export type { ActorTypeDefinition, AnyActorTypeDefinition, ContextOf, EventOf, PersistedSnapshot, Projection } from '../machines/kit/actor-type.js';

export interface ActorRef {
  type: string;
  id: string;
}

export const refKey = (ref: ActorRef): string => `${ref.type}/${ref.id}`;

const TYPE_RE = /^[a-z][a-z0-9_-]{0,62}$/;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,199}$/;

export function assertRef(ref: ActorRef): void {
  if (!ID_RE.test(ref.id)) {
    throw new ConcordError(ErrorCode.InvalidEvent, `invalid actor id '${ref.id}': 1-200 of [A-Za-z0-9_.:@-]`, { ref });
  }
}

export class Registry {
  readonly #types = new Map<string, ActorTypeDefinition>();

  constructor(defs: ActorTypeDefinition[] = []) {
    for (const def of defs) this.register(def);
  }

  register(def: ActorTypeDefinition): this {
    if (!TYPE_RE.test(def.type)) throw new ConcordError(ErrorCode.UnknownActorType, `invalid actor type name '${def.type}'`);
    if (this.#types.has(def.type)) throw new ConcordError(ErrorCode.UnknownActorType, `actor type '${def.type}' registered twice`);
    if (!Number.isInteger(def.version) || def.version < 1) {
      throw new ConcordError(ErrorCode.UnknownMachineVersion, `actor type '${def.type}': version must be a positive integer`);
    }
    this.#types.set(def.type, def);
    return this;
  }

  /**
   * Puts `def` in place of the registered definition of its type: the same type and version (so
   * the same stored snapshots), a machine built with what a service injects (the playbook
   * execution's instant steps). Before the runtime starts: actors already loaded keep the
   * machine they were loaded with.
   */
  replace(def: ActorTypeDefinition): this {
    const current = this.get(def.type);
    if (current.version !== def.version) {
      throw new ConcordError(ErrorCode.UnknownMachineVersion, `actor type '${def.type}': a replacement must keep version ${current.version} (got ${def.version})`);
    }
    this.#types.set(def.type, def);
    return this;
  }

  get(type: string): ActorTypeDefinition {
    const def = this.#types.get(type);
    if (!def) {
      throw new ConcordError(ErrorCode.UnknownActorType, `unknown actor type '${type}'`, { type, known: this.types() });
    }
    return def;
  }

  has(type: string): boolean {
    return this.#types.has(type);
  }

  types(): string[] {
    return [...this.#types.keys()];
  }
}

/**
 * Brings a stored snapshot up to the definition's version by its migrations, then checks that
 * it names states that exist. A snapshot from a newer version, a missing migration, or a state
 * the machine no longer has is a clear error: never a silent reset.
 */
export function upgradeSnapshot(def: ActorTypeDefinition, ref: ActorRef, stored: PersistedSnapshot, storedVersion: number): PersistedSnapshot {
  if (storedVersion > def.version) {
    throw new ConcordError(
      ErrorCode.UnknownMachineVersion,
      `${refKey(ref)} was written by machine version ${storedVersion}, newer than the deployed ${def.version}`,
      { ref, storedVersion, deployedVersion: def.version },
    );
  }
  let snap = stored;
  for (let v = storedVersion; v < def.version; v++) {
    const step = def.migrations?.[v];
    if (!step) {
      throw new ConcordError(ErrorCode.UnknownMachineVersion, `${refKey(ref)}: no migration from machine version ${v} to ${v + 1}`, {
        ref,
        storedVersion,
        deployedVersion: def.version,
      });
    }
    snap = step(snap);
  }
  try {
    def.machine.resolveState({ value: snap.value as never, context: snap.context });
  } catch (err) {
    throw new ConcordError(
      ErrorCode.InvalidSnapshot,
      `${refKey(ref)}: stored state ${JSON.stringify(snap.value)} does not exist in machine '${def.machine.id}' version ${def.version}: ${(err as Error).message}`,
      { ref, value: snap.value, machineVersion: def.version },
      { cause: err },
    );
  }
  return snap;
}
