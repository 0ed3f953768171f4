import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import type pg from 'pg';

const WORKER = fileURLToPath(new URL('../../fixtures/nats-worker.ts', import.meta.url));
const enc = new TextEncoder();

export interface Worker {
  child: ChildProcess;
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

/** Starts test/fixtures/nats-worker.ts and resolves once it printed `ready`. */
export function spawnWorker(env: Record<string, string>, timeoutMs = 30_000): Promise<Worker> {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`worker not ready after ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, pid: Number(m[1]), exited });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code}) before ready: ${stderr}`));
    });
  });
}

export async function kill(w: Worker): Promise<void> {
  w.child.kill('SIGKILL');
  await w.exited;
}

/** Every tally's entries, by actor id. */
export async function allEntries(pool: pg.Pool): Promise<Map<string, string[]>> {
  const { rows } = await pool.query<{ id: string; entries: string[] }>(
    `SELECT id, snapshot->'context'->'entries' AS entries FROM actors WHERE type = 'tally'`,
  );
  return new Map(rows.map((r) => [r.id, r.entries]));
}

export async function countEntries(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT coalesce(sum(jsonb_array_length(snapshot->'context'->'entries')), 0)::int AS n FROM actors WHERE type = 'tally'`,
  );
  return rows[0]!.n;
}

/**
 * Checks what each actor applied against what was sent to it: per source, every seq once and
 * in the order sent. Returns counts of lost, duplicated and reordered messages.
 */
export function audit(expected: Map<string, string[]>, actual: Map<string, string[]>): { lost: number; duplicated: number; reordered: number; applied: number } {
  let lost = 0;
  let duplicated = 0;
  let reordered = 0;
  let applied = 0;
  for (const [id, want] of expected) {
    const got = actual.get(id) ?? [];
    applied += got.length;
    const seen = new Set<string>();
    for (const e of got) {
      if (seen.has(e)) duplicated++;
      seen.add(e);
    }
    for (const e of want) if (!seen.has(e)) lost++;
    // per source, the applied seqs must be the sent ones in the sent order
    const bySource = (list: string[]) => {
      const m = new Map<string, string[]>();
      for (const e of list) {
        const src = e.slice(0, e.lastIndexOf(':'));
        m.set(src, [...(m.get(src) ?? []), e]);
      }
      return m;
    };
    const wantBy = bySource(want);
    for (const [src, list] of bySource([...new Set(got)])) {
      const order = wantBy.get(src) ?? [];
      const positions = list.map((e) => order.indexOf(e));
      for (let i = 1; i < positions.length; i++) if (positions[i]! < positions[i - 1]!) reordered++;
    }
  }
  return { lost, duplicated, reordered, applied };
}

/**
 * An outside publisher: sends events with its own Nats-Msg-Id, pipelined (a window of acks
 * outstanding), in order, optionally paced to `perSecond`.
 */
export async function publishAll(
  url: string,
  messages: Array<{ subject: string; msgId: string; event: Record<string, unknown> }>,
  window = 256,
  perSecond = Infinity,
): Promise<void> {
  const nc: NatsConnection = await connect({ servers: url });
  const js = jetstream(nc, { timeout: 20_000 });
  const start = performance.now();
  try {
    for (let i = 0; i < messages.length; i += window) {
      const due = start + (i / perSecond) * 1_000; // pacing, when a rate is given
      if (due > performance.now()) await new Promise((r) => setTimeout(r, due - performance.now()));
      await Promise.all(
        messages.slice(i, i + window).map((m) => js.publish(m.subject, enc.encode(JSON.stringify(m.event)), { msgID: m.msgId })),
      );
    }
  } finally {
    await nc.close();
  }
}
