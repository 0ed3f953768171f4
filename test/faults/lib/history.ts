/**
 * The fault suite's history checker, in the manner of Jepsen's and Antithesis' checkers: a run
 * records what it asked for (operations, each acknowledged or not) and what the system did
 * (what each target applied, in order, and what was still unfinished after the drain), and the
 * checker says how that differs from the guarantees (README: durable, effectively once, ordered
 * per source, nothing left behind).
 *
 * - lost: an acknowledged operation its target never applied (an unacknowledged one may or may
 *   not have been applied; either is allowed);
 * - duplicated: an operation applied more than once (by id), or an applied id nobody sent;
 * - reordered: per target and source, an applied operation that comes before one the source sent
 *   earlier (counted once per inversion of neighbours);
 * - stuck: work that should have ended after the drain and had not (a message still pending, a
 *   saga not in a final state, an outbox row, an overdue timer).
 */

/** One operation a client sent: `seq` orders a source's operations, as the source sent them. */
export interface Operation {
  id: string;
  target: string;
  source: string;
  seq: number;
  /** The system acknowledged it (HTTP 2xx, JetStream PubAck, a committed start). */
  acked: boolean;
}

export interface History {
  operations: Operation[];
  /** What each target applied, in the order it applied them (operation ids). */
  applied: Map<string, string[]>;
  /** Things still unfinished after the drain, each named (`saga w-1: PAYMENT_PROCESSING`). */
  unfinished: string[];
  /**
   * Side effects taken outside (a service applying a command), by the key that must be taken at
   * most once (`<workflow>/<step>/<attempt>`), with how many times each was taken.
   */
  effects?: Map<string, number>;
}

export interface Verdict {
  operations: number;
  acked: number;
  applied: number;
  lost: number;
  duplicated: number;
  reordered: number;
  stuck: number;
  /** Up to 10 examples of each kind of anomaly, for the failure message. */
  examples: { lost: string[]; duplicated: string[]; reordered: string[]; stuck: string[] };
  ok: boolean;
}

const MAX_EXAMPLES = 10;

/** Checks a recorded history (see the module comment for what each count means). */
export function checkHistory(h: History): Verdict {
  const ops = new Map<string, Operation>();
  for (const op of h.operations) ops.set(op.id, op);
  const examples: Verdict['examples'] = { lost: [], duplicated: [], reordered: [], stuck: [] };
  const note = (kind: keyof Verdict['examples'], what: string) => {
    if (examples[kind].length < MAX_EXAMPLES) examples[kind].push(what);
  };

  let applied = 0;
  let duplicated = 0;
  let reordered = 0;
  const seen = new Set<string>();
  for (const [target, ids] of h.applied) {
    applied += ids.length;
    // a source's operations, by the order they were applied (first application of each)
    const lastSeqBySource = new Map<string, { seq: number; id: string }>();
    for (const id of ids) {
      const op = ops.get(id);
      if (!op || op.target !== target) {
        duplicated++; // applied where nothing of that id was sent: a phantom is as wrong as a double
        note('duplicated', `${target}: ${id} was never sent to it`);
        continue;
      }
      if (seen.has(id)) {
        duplicated++;
        note('duplicated', `${target}: ${id} applied again`);
        continue;
      }
      seen.add(id);
      const last = lastSeqBySource.get(op.source);
      if (last && op.seq < last.seq) {
        reordered++;
        note('reordered', `${target}: ${id} (seq ${op.seq}) after ${last.id} (seq ${last.seq}) from ${op.source}`);
      }
      if (!last || op.seq > last.seq) lastSeqBySource.set(op.source, { seq: op.seq, id });
    }
  }

  for (const [key, times] of h.effects ?? []) {
    if (times > 1) {
      duplicated += times - 1;
      note('duplicated', `effect ${key} taken ${times} times`);
    }
  }

  let lost = 0;
  let acked = 0;
  for (const op of ops.values()) {
    if (op.acked) acked++;
    if (op.acked && !seen.has(op.id)) {
      lost++;
      note('lost', `${op.target}: ${op.id} acknowledged, never applied`);
    }
  }
  for (const u of h.unfinished) note('stuck', u);
  const stuck = h.unfinished.length;
  return { operations: ops.size, acked, applied, lost, duplicated, reordered, stuck, examples, ok: lost + duplicated + reordered + stuck === 0 };
}

/** One line per anomaly kind, for logs and assertion messages. */
export function describeVerdict(v: Verdict): string {
  const head = `${v.operations} operations (${v.acked} acknowledged), ${v.applied} applied: lost ${v.lost}, duplicated ${v.duplicated}, reordered ${v.reordered}, stuck ${v.stuck}`;
  const lines = (Object.keys(v.examples) as Array<keyof Verdict['examples']>).filter((k) => v.examples[k].length > 0).map((k) => `  ${k}: ${v.examples[k].join('; ')}`);
  return [head, ...lines].join('\n');
}
