import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { signToken } from '../http/auth/jwt.js';
import { freshDatabase } from './helpers/db.js';

/**
 * The README tour is run as written: each command of its bash blocks against a started server,
 * its output checked against the `# → ` lines under it (`…` stands for any text). A tour that
 * drifts from what Concord answers fails here. Set TOUR_PRINT=1 to see what each command printed.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const SECRET = 'tour-secret-0123456789-0123456789-abcdef';

interface Step {
  command: string;
  expected: string[];
}

/** The bash blocks of the section headed `heading`, split into commands with their expectations. */
export function tourSteps(markdown: string, heading: string): Step[][] {
  const section = markdown.split(/^## /m).find((s) => s.startsWith(heading));
  if (!section) throw new Error(`README has no section '${heading}'`);
  const blocks = [...section.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.map((block) => {
    const steps: Step[] = [];
    let pending: string[] = [];
    for (const line of block.split('\n')) {
      if (pending.length === 0) {
        const expectation = /^# → ?(.*)$/.exec(line);
        if (expectation) {
          steps.at(-1)?.expected.push(expectation[1]!);
          continue;
        }
        if (!line.trim() || line.startsWith('#')) continue;
      }
      pending.push(line);
      const quotes = pending.join('\n').split("'").length - 1;
      if (quotes % 2 === 0 && !line.endsWith('\\')) {
        steps.push({ command: pending.join('\n'), expected: [] });
        pending = [];
      }
    }
    return steps;
  });
}

/** Lines the harness does itself: starting the server and exporting the token it prints. */
const harnessLine = (command: string) => /^(npm start|npm run demo)\b|^export TOKEN=eyJ/.test(command.trim());

function matches(expected: string, actual: string): boolean {
  const pattern = expected
    .split('…')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*?');
  return new RegExp(`^${pattern}$`).test(actual);
}

async function startServer(file: string, env: Record<string, string>): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, ['--import', 'tsx', file], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${file} did not listen in 60 s: ${err}`)), 60_000);
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = /"port":(\d+)/.exec(line) ?? /http:\/\/localhost:(\d+)/.exec(line);
      if (m && (line.includes('concord listening') || line.includes('Concord demo on'))) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.once('exit', (code) => reject(new Error(`${file} exited with ${code}: ${err}`)));
  });
  return { proc, port };
}

/** Runs the steps in one bash session (variables carry over) and answers what each printed. */
async function runSteps(steps: Step[], port: number, env: Record<string, string>): Promise<string[][]> {
  const script = ['set -u -o pipefail']
    .concat(steps.flatMap((s, i) => [`echo "@@step ${i}"`, s.command.replaceAll('localhost:3000', `127.0.0.1:${port}`)]))
    .concat('echo "@@end"')
    .join('\n');
  const proc = spawn('bash', ['-c', script], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise((resolve) => proc.once('close', resolve));
  expect(out, `the tour stopped early; stderr: ${err}`).toContain('@@end');
  const outputs: string[][] = steps.map(() => []);
  let current = -1;
  for (const line of out.split('\n')) {
    const marker = /^@@step (\d+)$/.exec(line);
    if (marker) current = Number(marker[1]);
    else if (line === '@@end') break;
    else if (current >= 0 && line.trim()) outputs[current]!.push(line);
  }
  return outputs;
}

function check(steps: Step[], outputs: string[][]): void {
  if (process.env.TOUR_PRINT === '1') {
    for (const [i, step] of steps.entries()) process.stdout.write(`${step.command}\n${outputs[i]!.map((l) => `# → ${l}`).join('\n')}\n`);
  }
  steps.forEach((step, i) => {
    const actual = outputs[i]!;
    const label = `README tour command:\n${step.command}\nprinted:\n${actual.join('\n')}`;
    expect(actual.length, label).toBe(step.expected.length);
    step.expected.forEach((e, n) => expect(matches(e, actual[n]!), `${label}\nline ${n + 1} should match: ${e}`).toBe(true));
  });
}

const running: ChildProcess[] = [];
afterAll(() => {
  for (const p of running) p.kill('SIGTERM');
});

describe('the README tour, run against a started server', () => {
  const [tour, demo] = tourSteps(README, 'A five-minute tour');

  it('has commands, and an expectation under each one that prints something', () => {
    expect(tour!.length).toBeGreaterThan(15);
    expect(demo!.length).toBeGreaterThan(3);
  });

  it('npm start: every command prints what the README says', async () => {
    const database = await freshDatabase(4);
    try {
      const env = { DATABASE_URL: database.url, JWT_SECRET: SECRET, CREDENTIALS_KEYS: `tour:${Buffer.alloc(32, 1).toString('base64')}`, PORT: '0', HOST: '127.0.0.1', NATS_URL: '', LOG_LEVEL: 'info' };
      const server = await startServer('app/main.ts', env);
      running.push(server.proc);
      const token = signToken({ sub: 'local-operator', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET);
      const steps = tour!.filter((s) => !harnessLine(s.command));
      check(steps, await runSteps(steps, server.port, { ...env, TOKEN: token }));
      server.proc.kill('SIGTERM');
    } finally {
      await database.close();
    }
  }, 180_000);

  it('npm run demo: the order saga of the README completes as it says', async () => {
    const database = await freshDatabase(4);
    try {
      const env = { DATABASE_URL: database.url, JWT_SECRET: SECRET, PORT: '0', HOST: '127.0.0.1', NATS_URL: '', LOG_LEVEL: 'info' };
      const server = await startServer('simulator/demo.ts', env);
      running.push(server.proc);
      const token = signToken({ sub: 'demo-operator', role: 'operator', exp: Math.floor(Date.now() / 1000) + 3600 }, SECRET);
      const steps = demo!.map((s) => ({ ...s, command: s.command.replace(/^export TOKEN=eyJ\.\.\.; /, '') })).filter((s) => !harnessLine(s.command));
      check(steps, await runSteps(steps, server.port, { ...env, TOKEN: token }));
      server.proc.kill('SIGTERM');
    } finally {
      await database.close();
    }
  }, 180_000);
});
