import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';

export const WORKER = fileURLToPath(new URL('../fixtures/crash-worker.ts', import.meta.url));

export interface Child {
  proc: ChildProcess;
  /** Resolves when the child prints `line` (or rejects if it exits first). */
  waitLine(line: string, timeoutMs?: number): Promise<void>;
  exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Runs a TypeScript file in a child Node process (via tsx), handing each stdout line to `onLine`. */
export function spawnTs(file: string, env: Record<string, string>, onLine: (line: string) => void = () => undefined): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const seen = new Set<string>();
  const waiters = new Map<string, Array<() => void>>();
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    onLine(line);
    seen.add(line);
    for (const w of waiters.get(line) ?? []) w();
    waiters.delete(line);
  });
  // 'close' (not 'exit'): every line the child wrote has been read by then
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  return {
    proc,
    exited,
    waitLine(line, timeoutMs = 30_000) {
      if (seen.has(line)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`child did not print '${line}' in ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
        void exited.then((code) => {
          clearTimeout(t);
          if (!seen.has(line)) reject(new Error(`child exited (${code}) before printing '${line}'; stderr: ${stderr}`));
        });
        const list = waiters.get(line) ?? [];
        list.push(() => {
          clearTimeout(t);
          resolve();
        });
        waiters.set(line, list);
      });
    },
    async kill(signal = 'SIGKILL') {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await exited;
    },
  };
}
