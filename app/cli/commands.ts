import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ParseArgsConfig } from 'node:util';
import { signToken } from '../../http/auth/jwt.js';
import { resolveJwtSecret } from '../../http/auth/secret.js';
import { loadConfig } from '../../runtime/config.js';
import { openDatabase } from '../../runtime/db.js';
import { createLogger } from '../../runtime/logger.js';
import { migrate } from '../../runtime/migrate.js';
import { ROLES, type Role } from '../../services/common/principal.js';
import type { ConcordClient } from './client.js';
import { cell, CliError, Exit, usage, type Printer } from './output.js';
import { actorsTable, actorView, deadLettersTable, deadLetterView, genericTable, genericView, historyTable, statePath, timersTable } from './render.js';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | undefined>;

/** What a command runs with. */
export interface Context {
  /** Positional arguments after the noun and verb. */
  args: string[];
  values: Values;
  /** The HTTP client (built lazily: `migrate`, `token` and `bench` need no server). */
  client(): ConcordClient;
  print: Printer;
  yes: boolean;
  dryRun: boolean;
  reason: string | undefined;
  stdin: NodeJS.ReadStream;
  /** Environment of the CLI's own process (for `migrate`, `token` and `bench`, which run locally). */
  env: Record<string, string | undefined>;
}

export interface Command {
  noun: string;
  verb: string;
  /** Positional arguments, e.g. `<type> <id>`. */
  synopsis: string;
  summary: string;
  options?: Options;
  run(cx: Context): Promise<void>;
}

const str = (v: Values, k: string) => (typeof v[k] === 'string' ? (v[k] as string) : undefined);

function int(v: Values, k: string, min = 0): number | undefined {
  const s = str(v, k);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n < min) throw usage(`--${k} must be a whole number of at least ${min}`);
  return n;
}

function json(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw usage(`${what} is not JSON: ${(err as Error).message}`);
  }
}

const needArgs = (cx: Context, names: string[]) => {
  if (cx.args.length !== names.length) throw usage(`expected ${names.map((n) => `<${n}>`).join(' ')}, got ${cx.args.length ? cx.args.join(' ') : 'nothing'}`);
  return cx.args;
};

const needReason = (cx: Context) => {
  if (!cx.reason?.trim()) throw usage('--reason is required: every operator action says why (it is audited)');
  return cx.reason;
};

const seg = encodeURIComponent;
const actorPath = (type: string, id: string) => `api/v1/actors/${seg(type)}/${seg(id)}`;

/** `--dry-run` on a single action: say what would be sent, send nothing. */
function planned(cx: Context, method: string, path: string, body: unknown): boolean {
  if (!cx.dryRun) return false;
  const plan = { dryRun: true, request: { method, path: `/${path}`, body } };
  cx.print.answer(plan, (c) => `${c.yellow('dry run:')} would ${method} /${path}\n${JSON.stringify(body, null, 2)}`);
  return true;
}

const filterOptions: Options = {
  type: { type: 'string' },
  status: { type: 'string' },
  state: { type: 'string' },
  tenant: { type: 'string' },
  'updated-before': { type: 'string' },
};

function filterOf(v: Values): Record<string, string> {
  const f: Record<string, string | undefined> = { type: str(v, 'type'), status: str(v, 'status'), state: str(v, 'state'), tenant: str(v, 'tenant'), updatedBefore: str(v, 'updated-before') };
  return Object.fromEntries(Object.entries(f).filter(([, x]) => x !== undefined)) as Record<string, string>;
}

interface BulkAnswer {
  matched: number;
  sample?: Array<{ type: string; id: string }>;
  processed?: number;
  done?: number;
  unchanged?: number;
  failed?: Array<{ type: string; id: string; code: string; reason: string }>;
  remaining?: number;
}

/**
 * An action over every actor a filter matches: a dry run first (the count and a sample), then,
 * with `--yes` or a yes at the terminal, the real run in chunks through `POST /api/v1/actors/bulk`
 * (one audit record per actor, the server's rate limit) with a progress bar.
 */
async function bulk(cx: Context, action: 'pause' | 'resume' | 'send', extra: Record<string, unknown>): Promise<void> {
  const filter = filterOf(cx.values);
  if (Object.keys(filter).length === 0) throw usage(`name one actor (<type> <id>) or a filter (--type, --status, --state, --tenant, --updated-before) to ${action} many`);
  const reason = needReason(cx);
  const client = cx.client();
  const max = int(cx.values, 'limit', 1);
  const rate = str(cx.values, 'rate') === undefined ? undefined : Number(str(cx.values, 'rate'));
  if (rate !== undefined && !(rate > 0)) throw usage('--rate must be a positive number of actors per second');
  const dry = await client.request<BulkAnswer>('POST', 'api/v1/actors/bulk', { action, ...extra, filter, dryRun: true, reason });
  const target = Math.min(dry.matched, max ?? Infinity);
  const sample = (dry.sample ?? []).map((r) => `${r.type}/${r.id}`);
  if (cx.dryRun || dry.matched === 0) {
    cx.print.answer({ action, dryRun: true, ...dry }, (c) =>
      [`${c.bold(String(dry.matched))} actor(s) match; ${action} would act on ${target}`, ...sample.map((s) => `  ${s}`), dry.matched > sample.length ? c.dim(`  … and ${dry.matched - sample.length} more`) : ''].filter(Boolean).join('\n'),
    );
    return;
  }
  cx.print.note(`${dry.matched} actor(s) match; e.g. ${sample.slice(0, 3).join(', ')}${dry.matched > 3 ? ', …' : ''}`);
  if (!cx.yes && !(await cx.print.confirm(`${action} ${target} actor(s)?`, cx.stdin))) {
    throw new CliError(Exit.usage, `${target} actor(s) would be changed: confirm at a terminal, or pass --yes (--dry-run only counts)`);
  }
  const bar = cx.print.progress(target, action);
  let done = 0;
  let unchanged = 0;
  const failed = new Map<string, { type: string; id: string; code: string; reason: string }>();
  try {
    for (;;) {
      const settled = done + unchanged + failed.size;
      if (settled >= target) break;
      const chunk = Math.min(25, target - settled);
      const r = await client.request<BulkAnswer>('POST', 'api/v1/actors/bulk', { action, ...extra, filter, dryRun: false, reason, limit: chunk, ...(rate ? { ratePerSecond: rate } : {}) });
      const before = done + unchanged + failed.size;
      done += r.done ?? 0;
      unchanged += r.unchanged ?? 0;
      for (const f of r.failed ?? []) failed.set(`${f.type}/${f.id}`, f);
      bar.tick(done + unchanged + failed.size - before);
      // nothing moved (only the same failures again) or nothing left: stop rather than loop
      if ((r.done ?? 0) + (r.unchanged ?? 0) === 0 || (r.remaining ?? 0) === 0) break;
    }
  } finally {
    bar.stop();
  }
  const summary = { action, dryRun: false, matched: dry.matched, done, unchanged, failed: [...failed.values()] };
  cx.print.answer(summary, (c) =>
    [
      `${action}: ${c.green(`${done} done`)}, ${unchanged} unchanged, ${failed.size ? c.red(`${failed.size} failed`) : '0 failed'} (of ${dry.matched} matched)`,
      ...[...failed.values()].map((f) => `  ${f.type}/${f.id}: ${f.code} ${f.reason}`),
    ].join('\n'),
  );
  if (failed.size) throw new CliError(Exit.failed, `${failed.size} actor(s) failed`);
}

const eventOption: Options = { event: { type: 'string' } };
const eventOf = (cx: Context) => {
  const e = str(cx.values, 'event');
  if (!e) throw usage('--event is required: the event as JSON, e.g. --event \'{"type":"relationship.suspend"}\'');
  const event = json(e, '--event');
  if (typeof event !== 'object' || event === null || typeof (event as { type?: unknown }).type !== 'string') throw usage('--event must be a JSON object with a "type"');
  return event;
};

const bulkOptions: Options = { ...filterOptions, limit: { type: 'string' }, rate: { type: 'string' } };

function pauseLike(verb: 'pause' | 'resume'): Command {
  return {
    noun: 'actors',
    verb,
    synopsis: '[<type> <id>]',
    summary: verb === 'pause' ? 'Pause one actor, or every actor a filter matches (dry run first)' : 'Resume one actor, or every actor a filter matches (dry run first)',
    options: bulkOptions,
    async run(cx) {
      if (cx.args.length === 0) return bulk(cx, verb, {});
      const [type, id] = needArgs(cx, ['type', 'id']);
      const body = { reason: needReason(cx) };
      const path = `${actorPath(type!, id!)}/${verb}`;
      if (planned(cx, 'POST', path, body)) return;
      const r = await cx.client().request<Record<string, unknown>>('POST', path, body);
      cx.print.answer(r, (c) => `${type}/${id} ${r.paused ? c.yellow('paused') : c.green('running')} at version ${r.version}${r.changed ? '' : c.dim(' (it already was)')}`);
    },
  };
}

async function listAll<T>(cx: Context, path: string, query: Record<string, string | number | undefined>, next: 'cursor' | 'afterId' | 'afterVersion'): Promise<T[]> {
  const all = cx.values.all === true;
  const out: T[] = [];
  let q = { ...query };
  for (;;) {
    const page = await cx.client().request<{ data: T[]; pagination: Record<string, string | number | null> }>('GET', path, undefined, q);
    out.push(...page.data);
    const key = next === 'cursor' ? 'nextCursor' : next === 'afterId' ? 'nextAfterId' : 'nextAfterVersion';
    const n = page.pagination[key];
    if (!all || n === null || n === undefined) return out;
    q = { ...q, [next]: n };
  }
}

const pageOptions: Options = { limit: { type: 'string' }, all: { type: 'boolean' } };

/** Every command, noun by noun. */
export const commands: Command[] = [
  {
    noun: 'actors',
    verb: 'list',
    synopsis: '',
    summary: 'Search actors (by --type, --status, --tenant, --paused true|false); --all follows every page',
    options: { type: { type: 'string' }, status: { type: 'string' }, tenant: { type: 'string' }, paused: { type: 'string' }, ...pageOptions },
    async run(cx) {
      needArgs(cx, []);
      const paused = str(cx.values, 'paused');
      if (paused !== undefined && paused !== 'true' && paused !== 'false') throw usage('--paused is true or false');
      const rows = await listAll<Record<string, unknown>>(
        cx,
        'api/v1/actors',
        { type: str(cx.values, 'type'), status: str(cx.values, 'status'), tenant: str(cx.values, 'tenant'), paused, limit: int(cx.values, 'limit', 1) },
        'cursor',
      );
      cx.print.answer(rows, (c) => actorsTable(rows, c), rows);
    },
  },
  {
    noun: 'actors',
    verb: 'show',
    synopsis: '<type> <id>',
    summary: 'One actor: state, status, context, pending timers, accepted events',
    async run(cx) {
      const [type, id] = needArgs(cx, ['type', 'id']);
      const a = await cx.client().request<Record<string, unknown>>('GET', actorPath(type!, id!));
      cx.print.answer(a, (c) => actorView(a, c));
    },
  },
  {
    noun: 'actors',
    verb: 'history',
    synopsis: '<type> <id>',
    summary: 'The journal of applied events, oldest first, with the state after each (and its trace id)',
    options: { 'after-version': { type: 'string' }, ...pageOptions },
    async run(cx) {
      const [type, id] = needArgs(cx, ['type', 'id']);
      const rows = await listAll<Record<string, unknown>>(cx, `${actorPath(type!, id!)}/history`, { afterVersion: int(cx.values, 'after-version'), limit: int(cx.values, 'limit', 1) }, 'afterVersion');
      cx.print.answer(rows, (c) => historyTable(rows, c), rows);
    },
  },
  {
    noun: 'actors',
    verb: 'send',
    synopsis: '[<type> <id>] --event <json>',
    summary: 'Send an event the current state accepts, to one actor or to every actor a filter matches (--type required)',
    options: { ...eventOption, ...bulkOptions },
    async run(cx) {
      const event = eventOf(cx);
      if (cx.args.length === 0) return bulk(cx, 'send', { event });
      const [type, id] = needArgs(cx, ['type', 'id']);
      const body = { event, reason: needReason(cx) };
      const path = `${actorPath(type!, id!)}/send`;
      if (planned(cx, 'POST', path, body)) return;
      const r = await cx.client().request<Record<string, unknown>>('POST', path, body);
      cx.print.answer(r, (c) => `${type}/${id} ${c.green('applied')}: now ${statePath(r.value)} (${r.status}), version ${r.version}`);
    },
  },
  pauseLike('pause'),
  pauseLike('resume'),
  {
    noun: 'actors',
    verb: 'fork',
    synopsis: '<type> <id> --version <n>',
    summary: 'A new actor whose snapshot is the replay of the journal up to version n; the original is untouched',
    options: { version: { type: 'string' }, 'new-id': { type: 'string' } },
    async run(cx) {
      const [type, id] = needArgs(cx, ['type', 'id']);
      const version = int(cx.values, 'version', 1);
      if (version === undefined) throw usage('--version is required: the journal entry to fork from');
      const body = { version, reason: needReason(cx), ...(str(cx.values, 'new-id') ? { newId: str(cx.values, 'new-id') } : {}) };
      const path = `${actorPath(type!, id!)}/fork`;
      if (planned(cx, 'POST', path, body)) return;
      const r = await cx.client().request<Record<string, unknown>>('POST', path, body);
      cx.print.answer(r, (c) => `${c.green('forked')} ${type}/${id}@${version} as ${r.type}/${r.id}: ${statePath(r.value)} (${r.status})`);
    },
  },
  {
    noun: 'actors',
    verb: 'retry',
    synopsis: '<type> <id> [--step <step>]',
    summary: "Retry a failed step where the machine allows it: a workflow's FAILED step (--step id or number), a saga's failed compensation",
    options: { step: { type: 'string' } },
    async run(cx) {
      const [type, id] = needArgs(cx, ['type', 'id']);
      const step = str(cx.values, 'step');
      const body = { ...(step !== undefined ? { step: /^\d+$/.test(step) ? Number(step) : step } : {}), reason: needReason(cx) };
      const path = `${actorPath(type!, id!)}/retry`;
      if (planned(cx, 'POST', path, body)) return;
      const r = await cx.client().request<Record<string, unknown>>('POST', path, body);
      const s = r.step as { id: string; name: string | null };
      cx.print.answer(r, (c) => `${c.green('retried')} ${s.name ?? s.id} of ${type}/${id}: ${r.status}, version ${r.version}`);
    },
  },
  {
    noun: 'timers',
    verb: 'list',
    synopsis: '',
    summary: 'Pending durable timers across actors (--type, --due-before <ISO time>)',
    options: { type: { type: 'string' }, 'due-before': { type: 'string' }, ...pageOptions },
    async run(cx) {
      needArgs(cx, []);
      const rows = await listAll<Record<string, unknown>>(cx, 'api/v1/timers', { type: str(cx.values, 'type'), dueBefore: str(cx.values, 'due-before'), limit: int(cx.values, 'limit', 1) }, 'cursor');
      cx.print.answer(rows, (c) => timersTable(rows, c), rows);
    },
  },
  ...(['fire', 'cancel'] as const).map(
    (verb): Command => ({
      noun: 'timers',
      verb,
      synopsis: '<id>',
      summary: verb === 'fire' ? 'Fire a pending timer now (once, through the normal path)' : 'Cancel a pending timer',
      async run(cx) {
        const [id] = needArgs(cx, ['id']);
        const body = { reason: needReason(cx) };
        const [method, path] = verb === 'fire' ? ['POST', `api/v1/timers/${seg(id!)}/fire`] : ['DELETE', `api/v1/timers/${seg(id!)}`];
        if (planned(cx, method, path, body)) return;
        if (verb === 'cancel' && !cx.yes && !(await cx.print.confirm(`cancel timer ${id}? Its event will never be delivered.`, cx.stdin))) {
          throw new CliError(Exit.usage, 'cancelling a timer drops its event: confirm at a terminal, or pass --yes');
        }
        const r = await cx.client().request<Record<string, unknown>>(method, path, body);
        cx.print.answer(r, (c) => `timer ${id} ${c.green(verb === 'fire' ? 'fired' : 'cancelled')}${r.actorType ? ` (${r.actorType}/${r.actorId})` : ''}`);
      },
    }),
  ),
  {
    noun: 'dlq',
    verb: 'list',
    synopsis: '',
    summary: 'Dead letters, oldest first (--cause rejected|unroutable|invalid|failed, --type/--id of the actor, --replayed to include replayed ones)',
    options: { cause: { type: 'string' }, type: { type: 'string' }, id: { type: 'string' }, replayed: { type: 'boolean' }, ...pageOptions },
    async run(cx) {
      needArgs(cx, []);
      const rows = await listAll<Record<string, unknown>>(
        cx,
        'api/v1/dead-letters',
        { reason: str(cx.values, 'cause'), actorType: str(cx.values, 'type'), actorId: str(cx.values, 'id'), includeReplayed: cx.values.replayed ? 'true' : undefined, limit: int(cx.values, 'limit', 1) },
        'afterId',
      );
      cx.print.answer(rows, (c) => deadLettersTable(rows, c), rows);
    },
  },
  {
    noun: 'dlq',
    verb: 'show',
    synopsis: '<id>',
    summary: 'One dead letter with its payload and error',
    async run(cx) {
      const [id] = needArgs(cx, ['id']);
      const d = await cx.client().request<Record<string, unknown>>('GET', `api/v1/dead-letters/${seg(id!)}`);
      cx.print.answer(d, (c) => deadLetterView(d, c));
    },
  },
  {
    noun: 'dlq',
    verb: 'replay',
    synopsis: '<id> [--payload <json> | --payload-file <file>]',
    summary: 'Replay a dead letter, optionally with an edited payload (audited with both)',
    options: { payload: { type: 'string' }, 'payload-file': { type: 'string' } },
    async run(cx) {
      const [id] = needArgs(cx, ['id']);
      const inline = str(cx.values, 'payload');
      const file = str(cx.values, 'payload-file');
      if (inline !== undefined && file !== undefined) throw usage('give --payload or --payload-file, not both');
      let payload: unknown;
      if (inline !== undefined) payload = json(inline, '--payload');
      if (file !== undefined) {
        const text = await readFile(file, 'utf8').catch((err: Error) => {
          throw usage(`cannot read --payload-file: ${err.message}`);
        });
        payload = json(text, file);
      }
      const body = { ...(payload !== undefined ? { payload } : {}), reason: needReason(cx) };
      const path = `api/v1/dead-letters/${seg(id!)}/replay`;
      if (planned(cx, 'POST', path, body)) return;
      const r = await cx.client().request<Record<string, unknown>>('POST', path, body);
      cx.print.answer(r, (c) => `dead letter ${id} ${c.green('replayed')}${payload !== undefined ? ' with the edited payload' : ''} at ${r.replayedAt}`);
    },
  },
  {
    noun: 'integrations',
    verb: 'status',
    synopsis: '<service>',
    summary: 'Connections to a service (shopify, mercadolibre, generic): state, token expiry, scopes, webhooks (--tenant for an operator)',
    options: { tenant: { type: 'string' } },
    async run(cx) {
      const [service] = needArgs(cx, ['service']);
      const r = await cx.client().request<Record<string, unknown>>('GET', `api/integrations/${seg(service!)}/status`, undefined, { tenantId: str(cx.values, 'tenant') });
      const rows = Array.isArray(r.connections) ? (r.connections as Array<Record<string, unknown>>) : undefined;
      cx.print.answer(r, (c) => genericView(r, c), rows);
    },
  },
  {
    noun: 'playbooks',
    verb: 'list',
    synopsis: '',
    summary: 'Playbooks (GET /api/partnerships/playbooks)',
    options: pageOptions,
    async run(cx) {
      needArgs(cx, []);
      const r = await cx.client().request<unknown>('GET', 'api/partnerships/playbooks', undefined, { limit: int(cx.values, 'limit', 1) });
      const rows = (Array.isArray(r) ? r : ((r as { data?: unknown[] }).data ?? [])) as Array<Record<string, unknown>>;
      cx.print.answer(r, (c) => genericTable(rows, c, ['id', 'name', 'version', 'status', 'trigger', 'updatedAt']), rows);
    },
  },
  {
    noun: 'playbooks',
    verb: 'execute',
    synopsis: '<id> [--input <json>]',
    summary: 'Start an execution of a playbook with inputs (answers the execution id)',
    options: { input: { type: 'string' } },
    async run(cx) {
      const [id] = needArgs(cx, ['id']);
      const input = str(cx.values, 'input');
      const inputs = input === undefined ? {} : json(input, '--input');
      if (typeof inputs !== 'object' || inputs === null || Array.isArray(inputs)) throw usage('--input must be a JSON object');
      const body = { inputs, ...(cx.reason ? { reason: cx.reason } : {}) };
      const path = `api/partnerships/playbooks/${seg(id!)}/execute`;
      if (planned(cx, 'POST', path, body)) return;
      const r = await cx.client().request<Record<string, unknown>>('POST', path, body);
      cx.print.answer(r, (c) => `${c.green('started')} execution ${cell(r.executionId ?? r.id)} of playbook ${id}${r.status ? ` (${cell(r.status)})` : ''}`);
    },
  },
  {
    noun: 'executions',
    verb: 'show',
    synopsis: '<id>',
    summary: "A playbook execution with every step's status, attempts, output and logs",
    async run(cx) {
      const [id] = needArgs(cx, ['id']);
      const r = await cx.client().request<Record<string, unknown>>('GET', `api/partnerships/executions/${seg(id!)}`);
      cx.print.answer(r, (c) => genericView(r, c));
    },
  },
  {
    noun: 'migrate',
    verb: '',
    synopsis: '',
    summary: 'Apply pending migrations to DATABASE_URL (or the embedded database under DATA_DIR); runs locally, no server needed',
    async run(cx) {
      needArgs(cx, []);
      const config = loadConfig(cx.env);
      const log = createLogger(cx.print.mode === 'text' ? config.logLevel : 'warn', process.stderr);
      const database = await openDatabase({ url: config.databaseUrl, dataDir: config.dataDir, embeddedPort: config.embeddedPgPort, poolSize: 2, log });
      try {
        const { applied, skipped } = await migrate(database.pool, log);
        const r = { applied, alreadyApplied: skipped };
        cx.print.answer(r, (c) => (applied.length ? `${c.green('applied')} ${applied.join(', ')}` : `nothing to migrate (${skipped} applied already)`));
      } finally {
        await database.close();
      }
    },
  },
  {
    noun: 'token',
    verb: '',
    synopsis: '--role operator|vendor|partner|service',
    summary: 'Mint a bearer token with JWT_SECRET (or the embedded default secret under DATA_DIR); prints only the token',
    options: { role: { type: 'string' }, tenant: { type: 'string' }, sub: { type: 'string' }, ttl: { type: 'string' } },
    async run(cx) {
      needArgs(cx, []);
      const role = str(cx.values, 'role') as Role | undefined;
      if (!role || !ROLES.includes(role)) throw usage(`--role must be one of ${ROLES.join(', ')}`);
      const tenant = str(cx.values, 'tenant');
      if ((role === 'vendor' || role === 'partner') && !tenant) throw usage(`a ${role} token needs --tenant <${role} id>`);
      const ttl = int(cx.values, 'ttl', 1) ?? 86_400;
      const { secret } = await resolveJwtSecret(loadConfig(cx.env));
      const exp = Math.floor(Date.now() / 1000) + ttl;
      const token = signToken({ sub: str(cx.values, 'sub') ?? (tenant ? `${role}:${tenant}` : `local-${role}`), role, ...(tenant ? { tenantId: tenant } : {}), exp }, secret);
      cx.print.answer({ token, role, tenantId: tenant ?? null, expiresAt: new Date(exp * 1000).toISOString() }, () => token);
    },
  },
  {
    noun: 'bench',
    verb: '',
    synopsis: '[<name>...]',
    summary: 'Run the benchmarks in bench/ (all, or those whose file names start with a name) and print their tables',
    async run(cx) {
      if (cx.print.mode !== 'text') throw usage('bench prints tables: use --output text');
      const script = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
      const code = await new Promise<number | null>((resolve) => {
        const p = spawn(process.execPath, ['--import', 'tsx', script, ...cx.args], { stdio: 'inherit', env: cx.env });
        p.on('close', resolve);
      });
      if (code !== 0) throw new CliError(Exit.failed, `bench exited with ${code}`);
    },
  },
];
