import readline from 'node:readline/promises';

/** How answers are printed: tables (`text`), one JSON document (`json`), or one JSON value per line (`jsonl`). */
export type OutputMode = 'text' | 'json' | 'jsonl';

/** The CLI's exit codes. */
export const Exit = { ok: 0, failed: 1, usage: 2, notFound: 3, conflict: 4 } as const;
export type ExitCode = (typeof Exit)[keyof typeof Exit];

/** A failure the CLI explains in one line and turns into its exit code. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    /** The server's problem document, when it answered one. */
    readonly problem?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usage = (message: string) => new CliError(Exit.usage, message);

/** ANSI colour, only when the stream is a terminal and NO_COLOR is not set (https://no-color.org). */
export interface Colors {
  bold(s: string): string;
  dim(s: string): string;
  red(s: string): string;
  green(s: string): string;
  yellow(s: string): string;
}

export function colors(enabled: boolean): Colors {
  const wrap = (open: number, close: number) => (s: string) => (enabled ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { bold: wrap(1, 22), dim: wrap(2, 22), red: wrap(31, 39), green: wrap(32, 39), yellow: wrap(33, 39) };
}

// eslint-disable-next-line no-control-regex -- measuring printed width means skipping colour escapes
const ANSI = /\x1b\[[0-9;]*m/g;
const width = (s: string) => [...s.replace(ANSI, '')].length;

/** A cell as text: scalars as they are, objects as compact JSON, nothing as an empty cell. */
export function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v);
}

/** Long cells are cut so a row stays on one line. */
const clip = (s: string, max: number) => (width(s) > max ? `${[...s.replace(ANSI, '')].slice(0, max - 1).join('')}…` : s);

/** A plain aligned table: a header, a rule, one line per row. */
export function table(headers: string[], rows: string[][], c: Colors, maxCell = 60): string {
  const clipped = rows.map((r) => r.map((v) => clip(v.replace(/\s+/g, ' '), maxCell)));
  const widths = headers.map((h, i) => Math.max(width(h), ...clipped.map((r) => width(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((v, i) => (i === cells.length - 1 ? v : v + ' '.repeat(widths[i]! - width(v))))
      .join('  ')
      .trimEnd();
  return [c.bold(line(headers)), c.dim(widths.map((w) => '─'.repeat(w)).join('  ')), ...clipped.map(line)].join('\n');
}

/** `key  value` lines for one object. */
export function fields(entries: Array<[string, unknown]>, c: Colors): string {
  const w = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${c.bold(k.padEnd(w))}  ${cell(v)}`).join('\n');
}

/** Where a command prints: answers on stdout, everything else (progress, notes, errors) on stderr. */
export class Printer {
  readonly c: Colors;
  readonly #errColors: Colors;
  constructor(
    readonly mode: OutputMode,
    private readonly out: NodeJS.WriteStream,
    private readonly err: NodeJS.WriteStream,
    noColor: boolean,
  ) {
    this.c = colors(mode === 'text' && Boolean(out.isTTY) && !noColor);
    this.#errColors = colors(Boolean(err.isTTY) && !noColor);
  }

  /**
   * Prints an answer: in `text` mode what `render` makes of it; in `json` mode the value; in
   * `jsonl` mode each item of `items` (or the value) on its own line.
   */
  answer(value: unknown, render: (c: Colors) => string, items?: unknown[]): void {
    if (this.mode === 'json') this.out.write(`${JSON.stringify(value, null, 2)}\n`);
    else if (this.mode === 'jsonl') for (const v of items ?? [value]) this.out.write(`${JSON.stringify(v)}\n`);
    else {
      const text = render(this.c);
      if (text) this.out.write(`${text}\n`);
    }
  }

  /** A note for a person (stderr; not in json modes, whose stderr carries only errors). */
  note(message: string): void {
    if (this.mode === 'text') this.err.write(`${message}\n`);
  }

  error(e: CliError): void {
    if (this.mode === 'text') this.err.write(`${this.#errColors.red('error:')} ${e.message}\n`);
    else this.err.write(`${JSON.stringify({ error: e.message, exitCode: e.exitCode, ...(e.problem ? { problem: e.problem } : {}) })}\n`);
  }

  /** A progress bar on stderr when it is a terminal and the output is for a person; else nothing. */
  progress(total: number, label: string): Progress {
    const live = this.mode === 'text' && Boolean(this.err.isTTY) && total > 0;
    return new Progress(live ? this.err : null, total, label);
  }

  /** Asks yes/no on the terminal; false when there is no terminal to ask. */
  async confirm(question: string, input: NodeJS.ReadStream): Promise<boolean> {
    if (!input.isTTY || !this.err.isTTY) return false;
    const rl = readline.createInterface({ input, output: this.err });
    try {
      return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
    } finally {
      rl.close();
    }
  }
}

/** `label [██████░░░░] 60/100` redrawn in place on stderr. */
export class Progress {
  #done = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream | null,
    private readonly total: number,
    private readonly label: string,
  ) {
    this.#draw();
  }

  tick(n: number): void {
    this.#done = Math.min(this.total, this.#done + n);
    this.#draw();
  }

  stop(): void {
    if (this.stream) this.stream.write('\n');
  }

  #draw(): void {
    if (!this.stream) return;
    const cols = 30;
    const filled = Math.round((this.#done / this.total) * cols);
    this.stream.write(`\r${this.label} [${'█'.repeat(filled)}${'░'.repeat(cols - filled)}] ${this.#done}/${this.total}`);
  }
}
