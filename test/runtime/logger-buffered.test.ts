import { spawn } from 'node:child_process';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const WORKER = fileURLToPath(new URL('../fixtures/log-worker.ts', import.meta.url));

interface Line { i?: number; msg: string; password?: string; config?: { jwtSecret?: string }; req?: { headers?: { authorization?: string } }; level: number }

const running = new Set<ReturnType<typeof spawn>>();
afterEach(() => {
  // a failed test leaves no worker behind (the drain case would otherwise live on if its timer held it)
  for (const p of running) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  running.clear();
});

/** Runs the log worker; each stdout line with the time it arrived, and the worker's stderr markers. */
function worker(mode: string, env: Record<string, string> = {}) {
  const proc = spawn(process.execPath, ['--import', 'tsx', WORKER], { env: { ...process.env, LOG_WORKER_MODE: mode, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const lines: Array<{ at: number; line: Line }> = [];
  readline.createInterface({ input: proc.stdout }).on('line', (l) => lines.push({ at: Date.now(), line: JSON.parse(l) as Line }));
  let stderr = '';
  const logged = new Promise<number>((resolve, reject) => {
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /^logged (\d+)$/m.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    proc.once('close', (code) => reject(new Error(`worker exited (${code}) before logging; stderr: ${stderr}`)));
  });
  // 'close': every line the worker wrote has been read
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })));
  return { proc, lines, logged, closed, stderr: () => stderr };
}

const until = async (ok: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !ok() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
};

describe('the buffered log destination, in a real child process', () => {
  it('writes every line, in order and redacted, when the process stops on SIGTERM', async () => {
    // 1,000 lines of ~200 bytes: most are written in 4 KB blocks as they fill, the tail waits in the
    // buffer (the periodic flush set to a minute, so only the exit can write it)
    const w = worker('sigterm', { LINES: '1000', FLUSH_MS: '60000' });
    await w.logged;
    const before = w.lines.length;
    w.proc.kill('SIGTERM');
    expect(await w.closed).toEqual({ code: 0, signal: null });
    expect(before).toBeLessThan(1000); // the tail was still buffered when the signal came
    const got = w.lines.map((l) => l.line);
    expect(got).toHaveLength(1001);
    expect(got.slice(0, 1000).map((l) => l.i)).toEqual([...Array(1000).keys()]);
    expect(got[1000]!.msg).toBe('shutting down');
    for (const l of got.slice(0, 1000)) {
      expect(l).toMatchObject({ level: 30, msg: 'line', password: '[redacted]', config: { jwtSecret: '[redacted]' }, req: { headers: { authorization: '[redacted]' } } });
    }
  });

  it('writes the lines of an idle process within the flush period (about 1 s)', async () => {
    const w = worker('idle', { LINES: '3' });
    try {
      const t0 = await w.logged;
      await until(() => w.lines.length === 3, 5_000);
      expect(w.lines.map((l) => l.line.i)).toEqual([0, 1, 2]);
      const delay = w.lines.at(-1)!.at - t0;
      expect(delay).toBeLessThan(1_000 + 500); // the period, and a loaded machine's scheduling
      expect(w.proc.exitCode).toBeNull(); // written while the process lives, not by its exit
    } finally {
      w.proc.kill('SIGKILL');
      await w.closed;
    }
  });

  it('does not keep an otherwise finished process alive, and writes its lines on the way out', async () => {
    const w = worker('drain', { LINES: '5', FLUSH_MS: '60000' });
    const t0 = await w.logged;
    expect(await w.closed).toEqual({ code: 0, signal: null });
    expect(Date.now() - t0).toBeLessThan(10_000); // a referenced 60 s timer would hold it for a minute
    expect(w.lines.map((l) => l.line.i)).toEqual([0, 1, 2, 3, 4]);
  });

  it('writes the buffered lines when an uncaught exception ends the process', async () => {
    const w = worker('throw', { LINES: '5', FLUSH_MS: '60000' });
    await w.logged;
    expect((await w.closed).code).toBe(1);
    expect(w.stderr()).toContain('boom');
    expect(w.lines.map((l) => l.line.i)).toEqual([0, 1, 2, 3, 4]);
  });

  it('writes an error line at once, with every line before it', async () => {
    const w = worker('error', { LINES: '5', FLUSH_MS: '60000' });
    try {
      await w.logged;
      await until(() => w.lines.length === 6, 5_000);
      expect(w.lines.map((l) => [l.line.i, l.line.level])).toEqual([[0, 30], [1, 30], [2, 30], [3, 30], [4, 30], [5, 50]]);
      expect(w.proc.exitCode).toBeNull();
    } finally {
      w.proc.kill('SIGKILL');
      await w.closed;
    }
  });

  it('loses what is still buffered on kill -9 (the trade-off: the journal and tables are the record)', async () => {
    const w = worker('kill', { LINES: '5', FLUSH_MS: '60000' });
    await w.logged;
    await new Promise((r) => setTimeout(r, 200));
    w.proc.kill('SIGKILL');
    expect((await w.closed).signal).toBe('SIGKILL');
    expect(w.lines).toHaveLength(0);
  });
});
