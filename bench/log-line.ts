/**
 * `npx tsx bench/log-line.ts`: the CPU one request log line costs the server process, by
 * destination (runtime/logger.ts). Each variant runs in its own child process and logs LINES lines
 * shaped like http/middleware/observe.ts's access line (its child logger without the redaction
 * pass), one per event-loop turn (setImmediate) as a server under load does - so the unbuffered
 * destination cannot gather lines while a write is in flight as it does in a burst. CPU is the
 * child's whole process (process.cpuUsage: the event loop and libuv's threadpool), less the same
 * loop without the log call; write system calls from /proc/self/io (syscw). stdout is /dev/null
 * or a pipe the parent drains (what a container's log driver reads).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createLogger, type Logger } from '../runtime/logger.js';
import { fmt, table } from './lib.js';

const LINES = Number(process.env.BENCH_LINES ?? 50_000);
const VARIANTS = ['none', 'warn', 'unbuffered', 'buffered'] as const;
type Variant = (typeof VARIANTS)[number];
const syscw = () => Number(/^syscw: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN);

async function child(variant: Variant): Promise<void> {
  const log: Logger | undefined =
    variant === 'none' ? undefined : variant === 'buffered' ? createLogger('info', undefined, { buffered: {} }) : createLogger(variant === 'warn' ? 'warn' : 'info');
  const access = log?.child({}, { redact: { paths: [] } });
  const ids = Array.from({ length: 64 }, () => randomUUID());
  const one = (i: number) => {
    const line = { reqId: ids[i % 64], method: 'POST', path: `/api/v1/vendor-partner-coordination/relationships/${ids[(i * 7) % 64]}/activate`, route: '/api/v1/vendor-partner-coordination/relationships/:id/activate', status: 200, ms: Math.round(Math.random() * 1e4) / 100, sub: 'bench', role: 'operator' };
    access?.info(line, 'request');
  };
  for (let i = 0; i < 2_000; i++) one(i); // warm-up (JIT)
  await new Promise((r) => setTimeout(r, 100));
  const [c0, w0] = [process.cpuUsage(), syscw()];
  for (let i = 0; i < LINES; i++) {
    one(i);
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setTimeout(r, 50)); // the last async writes complete
  const c = process.cpuUsage(c0);
  process.send!({ us: (c.user + c.system) / LINES, writes: (syscw() - w0) / LINES });
}

async function run(variant: Variant, sink: 'devnull' | 'pipe'): Promise<{ us: number; writes: number }> {
  const p = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), variant], {
    stdio: ['ignore', sink === 'pipe' ? 'pipe' : 'ignore', 'inherit', 'ipc'],
  });
  p.stdout?.resume();
  const result = new Promise<{ us: number; writes: number }>((resolve, reject) => {
    p.once('message', (m) => resolve(m as { us: number; writes: number }));
    p.once('exit', (code) => reject(new Error(`${variant} exited ${code}`)));
  });
  const r = await result;
  p.kill();
  return r;
}

const arg = process.argv[2] as Variant | undefined;
if (arg) await child(arg);
else {
  const rows: string[][] = [];
  for (const sink of ['devnull', 'pipe'] as const) {
    const r = {} as Record<Variant, { us: number; writes: number }>;
    for (const round of [0, 1]) {
      for (const v of round ? [...VARIANTS].reverse() : VARIANTS) {
        const x = await run(v, sink);
        // the lower of two runs (noise only adds)
        r[v] = r[v] && r[v].us <= x.us ? r[v] : x;
      }
    }
    for (const v of VARIANTS) rows.push([sink === 'pipe' ? 'stdout a pipe' : 'stdout /dev/null', v, fmt(r[v].us, 1), v === 'none' ? '-' : fmt(r[v].us - r.none.us, 1), fmt(r[v].writes, 3)]);
  }
  console.log(`\n## One request log line (${LINES} lines, one per event-loop turn; CPU of the whole process, best of 2)\n`);
  console.log(table(['stdout', 'logger', 'µs per turn', 'µs per line (less none)', 'write syscalls per line'], rows));
}
