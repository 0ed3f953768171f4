import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConcordClient } from './client.js';
import { commands, type Command } from './commands.js';
import { CliError, Exit, Printer, usage, type OutputMode } from './output.js';

/**
 * `npx concord <noun> <verb> [args] [flags]`: the operator CLI over Concord's HTTP API (the same
 * routes the console calls), plus `migrate`, `token` and `bench`, which run locally.
 * Answers go to stdout (tables, or JSON with `--output json|jsonl`), everything else to stderr;
 * the exit code says how it went (0 ok, 1 failed, 2 usage, 3 not found, 4 conflict).
 */

type Options = NonNullable<ParseArgsConfig['options']>;

const GLOBAL: Options = {
  url: { type: 'string' },
  token: { type: 'string' },
  output: { type: 'string', short: 'o' },
  yes: { type: 'boolean', short: 'y' },
  'dry-run': { type: 'boolean' },
  reason: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const name = (c: Command) => (c.verb ? `${c.noun} ${c.verb}` : c.noun);

function help(only?: string): string {
  const list = commands.filter((c) => !only || c.noun === only);
  const w = Math.max(...list.map((c) => `${name(c)} ${c.synopsis}`.length));
  return `Usage: npx concord <command> [arguments] [flags]

Commands:
${list.map((c) => `  ${`${name(c)} ${c.synopsis}`.padEnd(w)}  ${c.summary}`).join('\n')}

Global flags:
  --url <url>          the server (CONCORD_URL; default http://localhost:3000)
  --token <jwt>        an operator token (CONCORD_TOKEN; mint one with \`npx concord token --role operator\`)
  --output, -o <mode>  text (tables; colour on a terminal unless NO_COLOR), json, or jsonl (one item per line);
                       answers on stdout, notes and errors on stderr
  --reason <why>       required by every action; written to the audit log
  --dry-run            say what an action would do (a bulk action: the count and a sample) and change nothing
  --yes, -y            act without asking (bulk actions and timer cancels ask at a terminal, else need it)

Bulk: pause, resume and send act on every actor a filter matches when no <type> <id> is given
  (--type, --status, --state, --tenant, --updated-before; --limit, --rate actors/s).

Exit codes: 0 ok, 1 failed, 2 usage (or a request the server calls invalid), 3 not found, 4 conflict.`;
}

/** The noun and verb among `argv`, skipping flags and the values of flags that take one. */
function locate(argv: string[]): { words: string[]; rest: string[] } {
  const takesValue = new Set<string>();
  for (const opts of [GLOBAL, ...commands.map((c) => c.options ?? {})]) {
    for (const [k, o] of Object.entries(opts)) {
      if (o.type === 'string') {
        takesValue.add(`--${k}`);
        if (o.short) takesValue.add(`-${o.short}`);
      }
    }
  }
  const words: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('-')) {
      rest.push(a);
      if (takesValue.has(a) && i + 1 < argv.length) rest.push(argv[++i]!);
    } else if (words.length < 2) words.push(a);
    else rest.push(a);
  }
  return { words, rest };
}

function find(words: string[]): { command: Command; extra: string[] } | undefined {
  const [noun, verb] = words;
  const exact = commands.find((c) => c.noun === noun && c.verb !== '' && c.verb === verb);
  if (exact) return { command: exact, extra: [] };
  const bare = commands.find((c) => c.noun === noun && c.verb === '');
  if (bare) return { command: bare, extra: verb === undefined ? [] : [verb] };
  return undefined;
}

export interface Io {
  argv: string[];
  env: Record<string, string | undefined>;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
}

/** Runs one invocation; answers its exit code. */
export async function run(io: Io): Promise<number> {
  const { words, rest } = locate(io.argv);
  const found = find(words);
  let mode: OutputMode = 'text';
  let print = new Printer(mode, io.stdout, io.stderr, Boolean(io.env.NO_COLOR));
  try {
    if (!found) {
      const wantsHelp = io.argv.includes('--help') || io.argv.includes('-h') || words.length === 0;
      const knownNoun = commands.some((c) => c.noun === words[0]);
      if (wantsHelp) {
        io.stdout.write(`${help(knownNoun ? words[0] : undefined)}\n`);
        return words.length === 0 && !io.argv.includes('--help') && !io.argv.includes('-h') ? Exit.usage : Exit.ok;
      }
      throw usage(knownNoun ? `unknown command '${words.join(' ')}': see npx concord ${words[0]} --help` : `unknown command '${words.join(' ')}': see npx concord --help`);
    }
    const { command, extra } = found;
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...GLOBAL, ...(command.options ?? {}) }, allowPositionals: true, strict: true });
    } catch (err) {
      throw usage(`${(err as Error).message.split('\n')[0]} (see npx concord ${name(command)} --help)`);
    }
    const values = parsed.values as Record<string, string | boolean | undefined>;
    const output = (values.output as string | undefined) ?? 'text';
    if (output !== 'text' && output !== 'json' && output !== 'jsonl') throw usage('--output is text, json or jsonl');
    mode = output;
    print = new Printer(mode, io.stdout, io.stderr, Boolean(io.env.NO_COLOR));
    if (values.help) {
      io.stdout.write(`Usage: npx concord ${name(command)} ${command.synopsis}\n\n${command.summary}\n\nFlags: ${Object.keys(command.options ?? {}).map((k) => `--${k}`).join(' ') || '(none)'}, and the global ones (npx concord --help)\n`);
      return Exit.ok;
    }
    const url = (values.url as string | undefined) ?? io.env.CONCORD_URL ?? 'http://localhost:3000';
    const token = (values.token as string | undefined) ?? io.env.CONCORD_TOKEN;
    let client: ConcordClient | undefined;
    await command.run({
      args: [...extra, ...parsed.positionals],
      values,
      client: () => {
        try {
          new URL(url);
        } catch {
          throw usage(`--url is not a URL: ${url}`);
        }
        client ??= new ConcordClient({ url, token });
        return client;
      },
      print,
      yes: values.yes === true,
      dryRun: values['dry-run'] === true,
      reason: values.reason as string | undefined,
      stdin: io.stdin,
      env: io.env,
    });
    return Exit.ok;
  } catch (err) {
    const e = err instanceof CliError ? err : new CliError(Exit.failed, err instanceof Error ? err.message : String(err));
    print.error(e);
    return e.exitCode;
  }
}

// eslint-disable-next-line no-restricted-syntax -- a client, not the server: CONCORD_URL, CONCORD_TOKEN, NO_COLOR and, for migrate/token, the server's own variables
const env = process.env;
process.exitCode = await run({ argv: process.argv.slice(2), env, stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
