import { Cron } from 'croner';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { DomainCode, DomainError } from '../common/errors.js';
import { Playbook, type PlaybookDef, type StepDef } from './schema.js';
import { STEP_TYPES, type Expressions } from './steps/types.js';

/**
 * A playbook's source (YAML, or JSON, which is YAML too) to a valid definition, or one
 * VALIDATION_FAILED error listing every problem with its line, column and field. The parser
 * keeps node positions (`LineCounter`), so a problem found on the parsed value (by the schema,
 * the dependsOn graph, a cron or an expression check) is mapped back to where it was written.
 */

export interface Issue {
  path: string[];
  /** `steps[2].dependsOn[0]` */
  field: string;
  line: number;
  column: number;
  message: string;
  code?: string;
}

/** Limits on the source itself (a YAML bomb is refused before it is expanded). */
const MAX_SOURCE_BYTES = 256 * 1024;
const MAX_ALIASES = 50;

export const fieldOf = (path: readonly (string | number)[]): string =>
  path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');

class Located {
  readonly issues: Issue[] = [];
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** The node at `path` (or the key of its last segment with `atKey`), else the deepest one that exists. */
  #offset(path: readonly (string | number)[], atKey: boolean): number {
    let node: unknown = this.doc.contents;
    let offset = (node as Node | null)?.range?.[0] ?? 0;
    for (let i = 0; i < path.length; i++) {
      const seg = path[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const last = i === path.length - 1;
        const keyNode = pair.key as Node;
        if (last && atKey) return keyNode.range?.[0] ?? offset;
        node = pair.value;
        offset = (pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as Node | undefined;
        if (!item) break;
        node = item;
        offset = item.range?.[0] ?? offset;
      } else break;
    }
    return offset;
  }

  add(path: readonly (string | number)[], message: string, o: { atKey?: boolean; code?: string } = {}): void {
    const pos = this.lines.linePos(this.#offset(path, o.atKey ?? false));
    this.issues.push({ path: path.map(String), field: fieldOf(path), line: pos.line, column: pos.col, message, ...(o.code ? { code: o.code } : {}) });
  }
}

const invalid = (issues: Issue[], format: string) =>
  new DomainError(DomainCode.ValidationFailed, `invalid playbook: ${issues.slice(0, 3).map((i) => `${i.field || '(root)'} at line ${i.line}, column ${i.column}: ${i.message}`).join('; ')}`, {
    target: format,
    issues,
  });

/** A cron schedule croner accepts, and an IANA time zone. */
export function checkCron(schedule: string, timezone: string): string | null {
  if (schedule.trim().split(/\s+/).length !== 5) return 'a cron schedule has five fields: minute hour day-of-month month day-of-week';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
  } catch {
    return `unknown time zone '${timezone}' (an IANA name such as Europe/Berlin)`;
  }
  try {
    new Cron(schedule, { timezone, paused: true });
  } catch (err) {
    return `invalid cron schedule: ${(err as Error).message}`;
  }
  return null;
}

function checkSteps(at: Located, def: PlaybookDef, expressions: Expressions | undefined): void {
  const all: Array<{ s: StepDef; path: (string | number)[]; phase: 'steps' | 'finally' }> = [
    ...def.steps.map((s, i) => ({ s, path: ['steps', i], phase: 'steps' as const })),
    ...(def.finally ?? []).map((s, i) => ({ s, path: ['finally', i], phase: 'finally' as const })),
  ];
  const where = new Map<string, (typeof all)[number]>();
  for (const e of all) {
    if (where.has(e.s.id)) at.add([...e.path, 'id'], `step id '${e.s.id}' is used twice`);
    else where.set(e.s.id, e);
    const types = STEP_TYPES.filter((t) => e.s[t] !== undefined);
    if (types.length !== 1) at.add(e.path, types.length === 0 ? `a step needs one type key: ${STEP_TYPES.join(', ')}` : `a step has exactly one type key, not ${types.join(' and ')}`);
    (e.s.dependsOn ?? []).forEach((d, j) => {
      const target = where.get(d) ?? all.find((x) => x.s.id === d);
      if (!target) at.add([...e.path, 'dependsOn', j], `unknown step id '${d}'`);
      else if (target.phase !== e.phase) at.add([...e.path, 'dependsOn', j], `'${d}' is in ${target.phase}: a step depends only on steps of its own block`);
      else if (d === e.s.id) at.add([...e.path, 'dependsOn', j], `step '${d}' depends on itself`);
    });
    if (expressions) {
      const cel = (key: string, expr: unknown) => {
        if (typeof expr !== 'string') return;
        try {
          expressions.checkCel(expr);
        } catch (err) {
          at.add([...e.path, key], (err as Error).message, { code: 'EXPRESSION' });
        }
      };
      cel('if', e.s.if);
      cel('forEach', e.s.forEach);
      cel('evaluate', e.s.evaluate);
      const tpl = e.s.template as { source?: unknown } | undefined;
      if (tpl && typeof tpl.source === 'string') {
        try {
          expressions.checkTemplate(tpl.source);
        } catch (err) {
          at.add([...e.path, 'template', 'source'], (err as Error).message, { code: 'TEMPLATE' });
        }
      }
    }
  }
  // cycles: a depth-first walk over each block; the cycle is reported at every step on it
  for (const block of ['steps', 'finally'] as const) {
    const steps = all.filter((x) => x.phase === block);
    const state = new Map<string, 'open' | 'done'>();
    const stack: string[] = [];
    const reported = new Set<string>();
    const visit = (id: string): void => {
      state.set(id, 'open');
      stack.push(id);
      for (const d of where.get(id)?.s.dependsOn ?? []) {
        const t = where.get(d);
        if (!t || t.phase !== block || d === id) continue;
        if (state.get(d) === 'open') {
          const cycle = [...stack.slice(stack.indexOf(d)), d];
          const key = [...cycle].sort().join(',');
          if (reported.has(key)) continue;
          reported.add(key);
          for (const c of cycle.slice(0, -1)) {
            const e = where.get(c)!;
            const j = (e.s.dependsOn ?? []).indexOf(cycle[cycle.indexOf(c) + 1]!);
            at.add([...e.path, 'dependsOn', ...(j >= 0 ? [j] : [])], `dependency cycle: ${cycle.join(' -> ')}`, { code: 'DEPENDENCY_CYCLE' });
          }
        } else if (!state.has(d)) visit(d);
      }
      stack.pop();
      state.set(id, 'done');
    };
    for (const s of steps) if (!state.has(s.s.id)) visit(s.s.id);
  }
}

function checkTriggers(at: Located, def: PlaybookDef): void {
  (def.triggers ?? []).forEach((t, i) => {
    const kinds = Object.keys(t);
    if (kinds.length !== 1) at.add(['triggers', i], kinds.length === 0 ? 'a trigger needs one of manual, cron, webhook, nats' : `a trigger has exactly one kind, not ${kinds.join(' and ')}`);
    if (t.cron) {
      const why = checkCron(t.cron.schedule, t.cron.timezone);
      if (why) at.add(['triggers', i, 'cron', why.startsWith('unknown time zone') ? 'timezone' : 'schedule'], why);
    }
  });
  const crons = (def.triggers ?? []).filter((t) => t.cron).length;
  if (crons > 1) at.add(['triggers'], 'at most one cron trigger per playbook');
}

function checkInputs(at: Located, def: PlaybookDef): void {
  for (const [name, input] of Object.entries(def.inputs ?? {})) {
    if (input.default !== undefined) {
      const why = inputTypeError(input.type, input.default, input.enum);
      if (why) at.add(['inputs', name, 'default'], why);
    }
  }
}

/** Why `value` is not of the declared input type; null when it is. */
export function inputTypeError(type: string, value: unknown, allowed?: ReadonlyArray<unknown>): string | null {
  const ok =
    type === 'string'
      ? typeof value === 'string'
      : type === 'number'
        ? typeof value === 'number' && Number.isFinite(value)
        : type === 'integer'
          ? Number.isInteger(value)
          : type === 'boolean'
            ? typeof value === 'boolean'
            : type === 'array'
              ? Array.isArray(value)
              : typeof value === 'object' && value !== null && !Array.isArray(value);
  if (!ok) return `must be ${type === 'integer' || type === 'array' || type === 'object' ? `an ${type}` : `a ${type}`}`;
  if (allowed && !allowed.includes(value as never)) return `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`;
  return null;
}

/**
 * Parses and validates a playbook. `format` is `yaml` or `json` (the request's content type);
 * JSON is parsed by the same YAML 1.2 parser (a superset), so its errors carry lines too.
 */
export function parsePlaybook(source: string, format: 'yaml' | 'json', expressions?: Expressions): PlaybookDef {
  if (Buffer.byteLength(source) > MAX_SOURCE_BYTES) {
    throw invalid([{ path: [], field: '', line: 1, column: 1, message: `a playbook is at most ${MAX_SOURCE_BYTES} bytes` }], format);
  }
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, uniqueKeys: true, prettyErrors: false, strict: true, version: '1.2' });
  if (doc.errors.length > 0) {
    throw invalid(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { path: [], field: '', line: pos.line, column: pos.col, message: e.message.split('\n')[0]!, code: e.code };
      }),
      format,
    );
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    throw invalid([{ path: [], field: '', line: 1, column: 1, message: (err as Error).message }], format);
  }
  const at = new Located(doc, lines);
  if (format === 'json' && !/^\s*\{/.test(source)) at.add([], 'a JSON playbook is an object');
  const parsed = Playbook.safeParse(value);
  if (!parsed.success) {
    for (const i of parsed.error.issues) {
      if (i.code === 'unrecognized_keys') for (const k of i.keys) at.add([...(i.path as (string | number)[]), k], `unknown field '${k}'`, { atKey: true, code: i.code });
      else at.add(i.path as (string | number)[], i.message, { code: i.code });
    }
    throw invalid(at.issues, format);
  }
  const def = parsed.data as PlaybookDef;
  checkSteps(at, def, expressions);
  checkTriggers(at, def);
  checkInputs(at, def);
  if (at.issues.length > 0) throw invalid(at.issues, format);
  return def;
}
