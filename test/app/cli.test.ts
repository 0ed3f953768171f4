import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Printer } from '../../app/cli/output.js';
import type { Database } from '../../runtime/db.js';
import { freshDatabase } from '../helpers/db.js';

/**
 * The CLI as operators run it: the real `bin/concord.mjs` in a child process against a started
 * Concord (app/main.ts over a fresh database), checked by its stdout, stderr and exit code.
 */
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/concord.mjs', import.meta.url));
const SECRET = 'cli-secret-0123456789-0123456789-abcdefgh';
const API = '/api/v1/vendor-partner-coordination';

let database: Database;
let server: ChildProcess;
let url: string;
let token: string;
let env: Record<string, string>;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function concord(args: string[], extra: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env, ...extra }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const json = async (args: string[], extra?: Record<string, string>) => {
  const r = await concord([...args, '--output', 'json'], extra);
  if (r.code !== 0) throw new Error(`concord ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
  return JSON.parse(r.stdout) as any;
};

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const relationship = async (extra: Record<string, unknown> = {}) =>
  (await api('POST', `${API}/relationships`, { vendorId: 'vendor-c', partnerId: 'partner-c', relationshipType: 'REFERRAL', ...extra })).body.id as string;

beforeAll(async () => {
  database = await freshDatabase(4);
  env = {
    DATABASE_URL: database.url,
    JWT_SECRET: SECRET,
    CREDENTIALS_KEYS: `cli:${Buffer.alloc(32, 7).toString('base64')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    NATS_URL: '',
    LOG_LEVEL: 'info',
    NO_COLOR: '',
  };
  server = spawn(process.execPath, ['--import', 'tsx', 'app/main.ts'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('server did not listen in 60 s')), 60_000);
    readline.createInterface({ input: server.stdout! }).on('line', (line) => {
      const m = /"port":(\d+)/.exec(line);
      if (m && line.includes('concord listening')) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  url = `http://127.0.0.1:${port}`;
  env.CONCORD_URL = url;
  // the CLI mints the token it then uses (JWT_SECRET from the environment)
  const minted = await concord(['token', '--role', 'operator', '--sub', 'op-cli']);
  expect(minted.code).toBe(0);
  token = minted.stdout.trim();
  env.CONCORD_TOKEN = token;
}, 90_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  await database?.close();
});

describe('npx concord against a live server', () => {
  it('lists and shows actors as tables (no colour off a terminal) and as JSON or JSON lines on stdout only', async () => {
    const id = await relationship();
    const list = await json(['actors', 'list', '--type', 'relationship']);
    expect(list.map((a: { id: string }) => a.id)).toContain(id);

    const lines = await concord(['actors', 'list', '--type', 'relationship', '-o', 'jsonl']);
    expect(lines.code).toBe(0);
    expect(lines.stderr).toBe('');
    expect(lines.stdout.trim().split('\n').map((l) => JSON.parse(l).id)).toContain(id);

    const text = await concord(['actors', 'show', 'relationship', id]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^type\\s+relationship\\nid\\s+${id}\\n`));
    expect(text.stdout).toMatch(/status\s+PENDING/);
    expect(text.stdout).toMatch(/state\s+pending\.open/);
    expect(text.stdout).not.toContain('\x1b[');

    const table = await concord(['actors', 'list', '--type', 'relationship']);
    expect(table.stdout.split('\n')[0]).toMatch(/^TYPE\s+ID\s+STATUS\s+STATE\s+VERSION\s+PAUSED\s+UPDATED$/);

    const history = await json(['actors', 'history', 'relationship', id]);
    expect(history).toEqual([expect.objectContaining({ version: 1, event: expect.objectContaining({ type: 'relationship.create' }) })]);
  });

  it('acts on one actor with a reason, and says how it went in its exit code: 2 usage, 3 not found, 4 conflict, 1 failed', async () => {
    const id = await relationship();
    const noReason = await concord(['actors', 'pause', 'relationship', id]);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('--reason is required');
    expect(noReason.stdout).toBe('');

    const dry = await json(['actors', 'pause', 'relationship', id, '--reason', 'why', '--dry-run']);
    expect(dry).toEqual({ dryRun: true, request: { method: 'POST', path: `/api/v1/actors/relationship/${id}/pause`, body: { reason: 'why' } } });
    expect((await api('GET', `/api/v1/actors/relationship/${id}`)).body.paused).toBeNull();

    const paused = await json(['actors', 'pause', 'relationship', id, '--reason', 'incident 9']);
    expect(paused).toMatchObject({ changed: true, paused: { by: 'op-cli', reason: 'incident 9' } });
    expect((await api('POST', `${API}/relationships/${id}/activate`)).status).toBe(409);

    const refused = await concord(['actors', 'send', 'relationship', id, '--event', '{"type":"relationship.activate"}', '--reason', 'try']);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/paused/i);
    const refusedJson = await concord(['actors', 'send', 'relationship', id, '--event', '{"type":"relationship.activate"}', '--reason', 'try', '-o', 'json']);
    expect(refusedJson.stdout).toBe('');
    expect(JSON.parse(refusedJson.stderr)).toMatchObject({ exitCode: 4, problem: { code: 'ACTOR_PAUSED', status: 409 } });

    expect((await concord(['actors', 'resume', 'relationship', id, '--reason', 'done'])).code).toBe(0);
    const fork = await json(['actors', 'fork', 'relationship', id, '--version', '1', '--reason', 'try a fix', '--new-id', `${id}.copy`]);
    expect(fork).toMatchObject({ id: `${id}.copy`, forkedFrom: { type: 'relationship', id, version: 1 } });

    // a workflow whose manual step failed: retried through the CLI
    const wf = await api('POST', `${API}/workflows`, { name: 'Setup', workflowType: 'INTEGRATION_SETUP', steps: [{ stepNumber: 1, name: 'Validate', status: 'NOT_STARTED', maxRetries: 0 }] });
    const wid = wf.body.id as string;
    const step = (wf.body.steps as Array<{ id: string }>)[0]!.id;
    await api('POST', `${API}/workflows/${wid}/start`);
    await api('POST', `${API}/workflows/${wid}/steps/${step}/execute`);
    expect((await api('POST', `${API}/workflows/${wid}/steps/${step}/complete`, { status: 'FAILED', errorMessage: 'down' })).body.status).toBe('FAILED');
    const retried = await concord(['actors', 'retry', 'workflow', wid, '--step', '1', '--reason', 'endpoint back']);
    expect(retried.code).toBe(0);
    expect(retried.stdout).toContain('retried Validate');
    expect((await concord(['actors', 'retry', 'workflow', wid, '--step', '1', '--reason', 'again'])).code).toBe(4); // READY now, not FAILED

    expect((await concord(['actors', 'show', 'relationship', 'no-such-id'])).code).toBe(3);
    expect((await concord(['actors', 'retry', 'relationship', id, '--reason', 'x'])).code).toBe(2); // the server: no steps to retry
    expect((await concord(['actors', 'show', 'relationship'])).code).toBe(2);
    expect((await concord(['actors', 'show', 'relationship', id, '--frobnicate'])).code).toBe(2);
    expect((await concord(['actors', 'frob'])).code).toBe(2);
    expect((await concord(['actors', 'send', 'relationship', id, '--event', '{not json', '--reason', 'x'])).code).toBe(2);
    const badToken = await concord(['actors', 'list'], { CONCORD_TOKEN: 'nope' });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toContain('CONCORD_TOKEN');
    const down = await concord(['actors', 'list', '--url', 'http://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach');
  });

  it('acts on many over a filter: a dry run counts, nothing happens without --yes off a terminal, then all of them with one audit record each', async () => {
    const ids = [];
    for (let i = 0; i < 30; i++) ids.push(await relationship({ vendorId: 'vendor-bulk' }));
    const filter = ['--type', 'relationship', '--status', 'PENDING'];
    const total = (await json(['actors', 'list', ...filter, '--paused', 'false', '--all', '--limit', '100'])).length;
    expect(total).toBeGreaterThanOrEqual(30);

    const dry = await json(['actors', 'pause', ...filter, '--reason', 'maintenance', '--dry-run']);
    expect(dry).toMatchObject({ action: 'pause', dryRun: true, matched: total });
    expect(dry.sample).toHaveLength(10);

    const unconfirmed = await concord(['actors', 'pause', ...filter, '--reason', 'maintenance']);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('--yes');
    expect(await json(['actors', 'list', ...filter, '--paused', 'true'])).toEqual([]);

    // more than one chunk of 25: the CLI works through them all
    const run = await json(['actors', 'pause', ...filter, '--reason', 'maintenance', '--yes', '--rate', '500']);
    expect(run).toMatchObject({ action: 'pause', dryRun: false, matched: total, done: total, unchanged: 0, failed: [] });
    expect((await json(['actors', 'list', ...filter, '--paused', 'true', '--all', '--limit', '100'])).length).toBe(total);
    const { rows } = await database.pool.query(`SELECT count(*)::int AS n FROM audit_log WHERE action = 'actor.pause' AND reason = 'maintenance'`);
    expect(rows[0].n).toBe(total);
    const resumed = await json(['actors', 'resume', ...filter, '--reason', 'over', '--yes', '--rate', '500']);
    expect(resumed).toMatchObject({ done: total, failed: [] });
  });

  it('lists, fires and cancels timers', async () => {
    const a = await relationship();
    const b = await relationship();
    for (const id of [a, b]) {
      await api('POST', `${API}/relationships/${id}/activate`);
      await api('PUT', `${API}/relationships/${id}`, { endDate: '2030-01-01T00:00:00Z' });
    }
    const timers = await json(['timers', 'list', '--type', 'relationship', '--all']);
    // the delay runs from the update's time stamp, so the timer is due at the end date plus the
    // few milliseconds between stamping the update and applying it (more on a loaded machine)
    const END = Date.parse('2030-01-01T00:00:00Z');
    const ending = (id: string) =>
      timers.find((t: { actorId: string; event: string; dueAt: string }) => t.actorId === id && t.event.includes('untilEnd') && Math.abs(Date.parse(t.dueAt) - END) < 60_000);
    const ta = ending(a);
    const tb = ending(b);
    expect(ta).toMatchObject({ actorType: 'relationship', event: expect.stringContaining('untilEnd') });

    expect((await concord(['timers', 'cancel', String(tb.id), '--reason', 'not needed'])).code).toBe(2); // needs --yes off a terminal
    expect((await concord(['timers', 'cancel', String(tb.id), '--reason', 'not needed', '--yes'])).code).toBe(0);
    expect((await concord(['timers', 'fire', String(ta.id), '--reason', 'end it now'])).code).toBe(0);
    const fired = await api('GET', `/api/v1/actors/relationship/${a}`);
    expect(fired.body.status).toBe('TERMINATED');
    expect((await concord(['timers', 'fire', String(ta.id), '--reason', 'again'])).code).toBe(3);
  });

  it('lists, shows and replays dead letters, with an edited payload', async () => {
    const { rows } = await database.pool.query<{ id: string }>(
      `INSERT INTO dead_letters (origin, reason, subject, actor_type, actor_id, message_id, payload, error, attempts)
       VALUES ('nats', 'rejected', 'concord.actor.p1.relationship.x', 'relationship', 'x-dead', 'dl-cli-1', '{"type":"relationship.activat"}', 'does not accept', 5) RETURNING id`,
    );
    const id = String(rows[0]!.id);
    const list = await json(['dlq', 'list', '--cause', 'rejected']);
    expect(list.map((d: { id: number }) => String(d.id))).toContain(id);
    const show = await concord(['dlq', 'show', id]);
    expect(show.stdout).toMatch(/message id\s+dl-cli-1/);
    expect(show.stdout).toContain('"type": "relationship.activat"');

    expect((await concord(['dlq', 'replay', id, '--payload', '{"kind":1}', '--reason', 'fix'])).code).toBe(2); // an event needs a type
    const replayed = await json(['dlq', 'replay', id, '--payload', '{"type":"relationship.activate"}', '--reason', 'typo']);
    expect(replayed.replayedAt).not.toBeNull();
    const audit = await database.pool.query(`SELECT after FROM audit_log WHERE action = 'dead_letter.replay' AND object_id = $1`, [id]);
    expect(audit.rows[0].after).toMatchObject({ payload: { type: 'relationship.activate' }, edited: true });
    expect((await concord(['dlq', 'replay', id, '--payload', '{"type":"relationship.activate"}', '--reason', 'again'])).code).toBe(4);
    expect((await concord(['dlq', 'show', '999999'])).code).toBe(3);
  });

  it('reports integration status problems, and migrates locally', async () => {
    const shopify = await concord(['integrations', 'status', 'shopify']);
    expect(shopify.code).toBe(1); // 503: the provider is not configured on this server
    expect(shopify.stderr).toContain('SHOPIFY_API_KEY');
    const migrated = await json(['migrate']);
    expect(migrated).toMatchObject({ applied: [] });
    expect(migrated.alreadyApplied).toBeGreaterThan(5);
  });

  it('`npx concord` resolves the package bin', async () => {
    const r = await new Promise<Result>((resolve) => {
      const p = spawn('npx', ['--no-install', 'concord', '--help'], { cwd: ROOT, env: { ...process.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: npx concord <command>');
  });
});

describe('playbooks and executions (against the /api/partnerships paths)', () => {
  it('lists playbooks, starts an execution with inputs and shows one', async () => {
    const seen: Array<{ method: string; url: string; body: string; auth: string | undefined }> = [];
    const fake = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, body, auth: req.headers.authorization });
        res.setHeader('content-type', 'application/json');
        if (req.url?.startsWith('/api/partnerships/playbooks?') || req.url === '/api/partnerships/playbooks') {
          res.end(JSON.stringify({ data: [{ id: 'pb-1', name: 'Onboard partner', version: 2, updatedAt: '2026-12-01T10:00:00.000Z' }], pagination: { nextCursor: null } }));
        } else if (req.url === '/api/partnerships/playbooks/pb-1/execute') {
          res.statusCode = 202;
          res.end(JSON.stringify({ executionId: 'ex-9', status: 'queued' }));
        } else if (req.url === '/api/partnerships/executions/ex-9') {
          res.end(JSON.stringify({ id: 'ex-9', status: 'running', steps: [{ id: 'fetch', status: 'succeeded', attempts: 1 }] }));
        } else {
          res.statusCode = 404;
          res.setHeader('content-type', 'application/problem+json');
          res.end(JSON.stringify({ title: 'Not Found', status: 404, detail: 'no such execution' }));
        }
      });
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const at = { CONCORD_URL: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`, CONCORD_TOKEN: 'tok' };
    try {
      const list = await concord(['playbooks', 'list'], at);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/^ID\s+NAME\s+VERSION\s+UPDATED AT\n/);
      expect(list.stdout).toContain('Onboard partner');
      expect(await json(['playbooks', 'execute', 'pb-1', '--input', '{"partnerId":"p-1"}'], at)).toEqual({ executionId: 'ex-9', status: 'queued' });
      expect(seen.at(-1)).toEqual({ method: 'POST', url: '/api/partnerships/playbooks/pb-1/execute', body: '{"inputs":{"partnerId":"p-1"}}', auth: 'Bearer tok' });
      const show = await concord(['executions', 'show', 'ex-9'], at);
      expect(show.stdout).toMatch(/status\s+running/);
      expect(show.stdout).toMatch(/fetch\s+succeeded\s+1/);
      expect((await concord(['executions', 'show', 'nope'], at)).code).toBe(3);
    } finally {
      fake.close();
    }
  });
});

describe('progress', () => {
  const stream = (isTTY: boolean) => {
    const out: string[] = [];
    return { out, s: { isTTY, write: (x: string) => out.push(x) } as unknown as NodeJS.WriteStream };
  };
  it('draws a bar on a terminal for text output only', () => {
    const err = stream(true);
    const bar = new Printer('text', stream(false).s, err.s, true).progress(4, 'pause');
    bar.tick(1);
    bar.tick(3);
    bar.stop();
    expect(err.out.join('')).toContain(`\rpause [${'█'.repeat(30)}] 4/4`);
    for (const [mode, tty] of [['json', true], ['text', false]] as const) {
      const quiet = stream(tty);
      new Printer(mode, stream(false).s, quiet.s, true).progress(4, 'pause').tick(4);
      expect(quiet.out).toEqual([]);
    }
  });
});

describe('colour', () => {
  const tty = (isTTY: boolean) => ({ isTTY, write: () => true }) as unknown as NodeJS.WriteStream;
  it('only on a terminal, never with NO_COLOR or JSON output', () => {
    expect(new Printer('text', tty(true), tty(true), false).c.red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(new Printer('text', tty(false), tty(true), false).c.red('x')).toBe('x');
    expect(new Printer('text', tty(true), tty(true), true).c.red('x')).toBe('x');
    expect(new Printer('json', tty(true), tty(true), false).c.red('x')).toBe('x');
  });
});
