/**
 * Just enough GraphQL for a fake Admin API: a parser for executable documents (operations,
 * variables, aliases, arguments, directives, fragments) and an executor that projects a
 * resolved object graph onto the client's selection, so a client gets exactly the fields it
 * asked for. There is no schema: objects carry `__typename`, and a property that is a function
 * is a field with arguments.
 */

export type Value = null | boolean | number | string | Value[] | { [k: string]: Value } | { $var: string } | { $enum: string };

export interface Directive {
  name: string;
  args: Record<string, Value>;
}

export interface Field {
  kind: 'field';
  alias: string | undefined;
  name: string;
  args: Record<string, Value>;
  directives: Directive[];
  selections: Selection[] | undefined;
}

export type Selection =
  | Field
  | { kind: 'spread'; name: string; directives: Directive[] }
  | { kind: 'inline'; on: string | undefined; directives: Directive[]; selections: Selection[] };

export interface Operation {
  type: 'query' | 'mutation' | 'subscription';
  name: string | undefined;
  variables: Record<string, Value | undefined>;
  directives: Directive[];
  selections: Selection[];
}

export interface GraphQLDocument {
  operations: Operation[];
  fragments: Map<string, { on: string; selections: Selection[] }>;
}

export class GraphQLSyntaxError extends Error {}

const PUNCT = new Set(['{', '}', '(', ')', '[', ']', ':', '!', '$', '@', '=', '|', '&']);

type Token = { t: 'punct' | 'name' | 'int' | 'float' | 'string' | 'spread' | 'eof'; v: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (ch === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (/[\s,\uFEFF]/.test(ch)) {
      i++;
    } else if (src.startsWith('...', i)) {
      out.push({ t: 'spread', v: '...' });
      i += 3;
    } else if (PUNCT.has(ch)) {
      out.push({ t: 'punct', v: ch });
      i++;
    } else if (/[A-Za-z_]/.test(ch)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ t: 'name', v: m[0] });
      i += m[0].length;
    } else if (/[-0-9]/.test(ch)) {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(src.slice(i));
      if (!m) throw new GraphQLSyntaxError(`Unexpected character '${ch}'`);
      out.push({ t: m[1] || m[2] ? 'float' : 'int', v: m[0] });
      i += m[0].length;
    } else if (src.startsWith('"""', i)) {
      const end = src.indexOf('"""', i + 3);
      if (end < 0) throw new GraphQLSyntaxError('Unterminated block string');
      out.push({ t: 'string', v: src.slice(i + 3, end).trim() });
      i = end + 3;
    } else if (ch === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\') {
          const e = src[j + 1];
          if (e === 'u') {
            s += String.fromCharCode(parseInt(src.slice(j + 2, j + 6), 16));
            j += 6;
            continue;
          }
          s += ({ n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' } as Record<string, string>)[e ?? ''] ?? e ?? '';
          j += 2;
        } else {
          s += src[j];
          j++;
        }
      }
      if (j >= src.length) throw new GraphQLSyntaxError('Unterminated string');
      out.push({ t: 'string', v: s });
      i = j + 1;
    } else {
      throw new GraphQLSyntaxError(`Unexpected character '${ch}'`);
    }
  }
  out.push({ t: 'eof', v: '' });
  return out;
}

/** Parses an executable GraphQL document; throws GraphQLSyntaxError. */
export function parse(src: string): GraphQLDocument {
  const toks = tokenize(src);
  let p = 0;
  const peek = () => toks[p]!;
  const next = () => toks[p++]!;
  const is = (v: string) => peek().v === v && (peek().t === 'punct' || peek().t === 'name');
  const expect = (v: string) => {
    const t = next();
    if (t.v !== v) throw new GraphQLSyntaxError(`Expected '${v}', found '${t.v || 'EOF'}'`);
  };
  const name = () => {
    const t = next();
    if (t.t !== 'name') throw new GraphQLSyntaxError(`Expected a name, found '${t.v || 'EOF'}'`);
    return t.v;
  };

  const value = (): Value => {
    const t = peek();
    if (t.t === 'punct' && t.v === '$') {
      next();
      return { $var: name() };
    }
    if (t.t === 'punct' && t.v === '[') {
      next();
      const list: Value[] = [];
      while (!is(']')) list.push(value());
      expect(']');
      return list;
    }
    if (t.t === 'punct' && t.v === '{') {
      next();
      const obj: Record<string, Value> = {};
      while (!is('}')) {
        const k = name();
        expect(':');
        obj[k] = value();
      }
      expect('}');
      return obj;
    }
    next();
    if (t.t === 'int' || t.t === 'float') return Number(t.v);
    if (t.t === 'string') return t.v;
    if (t.t === 'name') {
      if (t.v === 'true') return true;
      if (t.v === 'false') return false;
      if (t.v === 'null') return null;
      return { $enum: t.v };
    }
    throw new GraphQLSyntaxError(`Unexpected '${t.v || 'EOF'}'`);
  };

  const args = (): Record<string, Value> => {
    const out: Record<string, Value> = {};
    if (!is('(')) return out;
    next();
    while (!is(')')) {
      const k = name();
      expect(':');
      out[k] = value();
    }
    expect(')');
    return out;
  };

  const directives = (): Directive[] => {
    const out: Directive[] = [];
    while (is('@')) {
      next();
      out.push({ name: name(), args: args() });
    }
    return out;
  };

  const skipType = () => {
    if (is('[')) {
      next();
      skipType();
      expect(']');
    } else name();
    if (is('!')) next();
  };

  const selectionSet = (): Selection[] => {
    expect('{');
    const out: Selection[] = [];
    while (!is('}')) {
      if (peek().t === 'eof') throw new GraphQLSyntaxError("Expected '}', found EOF");
      if (peek().t === 'spread') {
        next();
        if (peek().t === 'name' && peek().v !== 'on') {
          out.push({ kind: 'spread', name: name(), directives: directives() });
        } else {
          let on: string | undefined;
          if (is('on')) {
            next();
            on = name();
          }
          const d = directives();
          out.push({ kind: 'inline', on, directives: d, selections: selectionSet() });
        }
        continue;
      }
      let alias: string | undefined;
      let fieldName = name();
      if (is(':')) {
        next();
        alias = fieldName;
        fieldName = name();
      }
      const a = args();
      const d = directives();
      out.push({ kind: 'field', alias, name: fieldName, args: a, directives: d, selections: is('{') ? selectionSet() : undefined });
    }
    expect('}');
    return out;
  };

  const doc: GraphQLDocument = { operations: [], fragments: new Map() };
  while (peek().t !== 'eof') {
    if (is('{')) {
      doc.operations.push({ type: 'query', name: undefined, variables: {}, directives: [], selections: selectionSet() });
      continue;
    }
    const kw = name();
    if (kw === 'fragment') {
      const n = name();
      expect('on');
      const on = name();
      directives();
      doc.fragments.set(n, { on, selections: selectionSet() });
      continue;
    }
    if (kw !== 'query' && kw !== 'mutation' && kw !== 'subscription') throw new GraphQLSyntaxError(`Unexpected '${kw}'`);
    const op: Operation = { type: kw, name: undefined, variables: {}, directives: [], selections: [] };
    if (peek().t === 'name') op.name = name();
    if (is('(')) {
      next();
      while (!is(')')) {
        expect('$');
        const v = name();
        expect(':');
        skipType();
        let dflt: Value | undefined;
        if (is('=')) {
          next();
          dflt = value();
        }
        directives();
        op.variables[v] = dflt;
      }
      expect(')');
    }
    op.directives = directives();
    op.selections = selectionSet();
    doc.operations.push(op);
  }
  if (doc.operations.length === 0) throw new GraphQLSyntaxError('No operation in the document');
  return doc;
}

/** Replaces variable references and enum markers by plain JSON values. */
export function resolveValue(v: Value | undefined, vars: Record<string, unknown>): unknown {
  if (v === undefined || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => resolveValue(x, vars));
  if ('$var' in v && typeof v.$var === 'string') return vars[v.$var];
  if ('$enum' in v && typeof v.$enum === 'string') return v.$enum;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolveValue(x as Value, vars)]));
}

export function resolveArgs(args: Record<string, Value>, vars: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) {
    const r = resolveValue(v, vars);
    // an unset variable is an absent argument, as in GraphQL
    if (r !== undefined) out[k] = r;
  }
  return out;
}

/** Marks an object whose projection costs no points (connection edges, page info). */
export const FREE = '__free';
/** Marks a connection (costs 2 points plus its nodes). */
export const CONNECTION = '__connection';

/** A field resolver: `(args) => value`. */
export type FieldFn = (args: Record<string, unknown>) => unknown;

export class FieldError extends Error {
  constructor(
    message: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

interface ExecContext {
  vars: Record<string, unknown>;
  fragments: GraphQLDocument['fragments'];
  cost: number;
}

function included(directives: Directive[], vars: Record<string, unknown>): boolean {
  for (const d of directives) {
    const cond = resolveValue(d.args.if, vars);
    if (d.name === 'skip' && cond === true) return false;
    if (d.name === 'include' && cond === false) return false;
  }
  return true;
}

/** Flattens fragments that apply to `typename` into the fields to resolve. */
function collectFields(selections: Selection[], typename: string | undefined, ctx: ExecContext, out: Field[] = []): Field[] {
  for (const s of selections) {
    if (!included(s.directives, ctx.vars)) continue;
    if (s.kind === 'field') out.push(s);
    else if (s.kind === 'inline') {
      if (!s.on || s.on === typename || typename === undefined) collectFields(s.selections, typename, ctx, out);
    } else {
      const f = ctx.fragments.get(s.name);
      if (!f) throw new FieldError(`Fragment ${s.name} was used, but not defined`);
      if (f.on === typename || typename === undefined) collectFields(f.selections, typename, ctx, out);
    }
  }
  return out;
}

function project(value: unknown, selections: Selection[] | undefined, ctx: ExecContext): unknown {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return value.map((v) => project(v, selections, ctx));
  if (!selections || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  if (obj[CONNECTION]) ctx.cost += 2;
  else if (!obj[FREE]) ctx.cost += 1;
  const typename = typeof obj.__typename === 'string' ? obj.__typename : undefined;
  const out: Record<string, unknown> = {};
  for (const f of collectFields(selections, typename, ctx)) {
    const key = f.alias ?? f.name;
    if (f.name === '__typename') {
      out[key] = typename ?? null;
      continue;
    }
    if (!(f.name in obj)) throw new FieldError(`Field '${f.name}' doesn't exist on type '${typename ?? 'Object'}'`, { code: 'undefinedField', typeName: typename, fieldName: f.name });
    const raw = obj[f.name];
    const resolved = typeof raw === 'function' ? (raw as FieldFn)(resolveArgs(f.args, ctx.vars)) : raw;
    out[key] = project(resolved, f.selections, ctx);
  }
  return out;
}

/** The root field a request is about: the operation's first field (after fragments). */
export function rootFields(op: Operation, doc: GraphQLDocument, vars: Record<string, unknown>): Field[] {
  return collectFields(op.selections, undefined, { vars, fragments: doc.fragments, cost: 0 });
}

/** Picks the operation to run, as a GraphQL server does with `operationName`. */
export function pickOperation(doc: GraphQLDocument, operationName: string | undefined): Operation {
  if (operationName) {
    const op = doc.operations.find((o) => o.name === operationName);
    if (!op) throw new FieldError(`Unknown operation named "${operationName}".`);
    return op;
  }
  if (doc.operations.length > 1) throw new FieldError('An operation name is required when the document holds several operations');
  return doc.operations[0]!;
}

/**
 * Runs `root` fields of an operation against a resolver object; returns data and the actual
 * cost (objects 1, connections 2, edges/page info free).
 */
export function execute(root: Record<string, unknown>, fields: Field[], ctx: { vars: Record<string, unknown>; fragments: GraphQLDocument['fragments'] }): { data: Record<string, unknown>; cost: number } {
  const ec: ExecContext = { ...ctx, cost: 0 };
  const data: Record<string, unknown> = {};
  for (const f of fields) {
    const raw = root[f.name];
    if (raw === undefined) throw new FieldError(`Field '${f.name}' doesn't exist on type '${String(root.__typename ?? 'QueryRoot')}'`, { code: 'undefinedField', typeName: root.__typename, fieldName: f.name });
    const resolved = typeof raw === 'function' ? (raw as FieldFn)(resolveArgs(f.args, ctx.vars)) : raw;
    data[f.alias ?? f.name] = project(resolved, f.selections, ec);
  }
  return { data, cost: ec.cost };
}

/**
 * The cost Shopify would reserve before running a query: objects 1, scalars 0, a connection
 * 2 + first * (cost of one node). Mutations cost 10 at the root.
 */
export function requestedCost(op: Operation, doc: GraphQLDocument, vars: Record<string, unknown>): number {
  const ctx: ExecContext = { vars, fragments: doc.fragments, cost: 0 };
  const costOf = (selections: Selection[] | undefined): number => {
    if (!selections) return 0;
    let sum = 0;
    for (const f of collectFields(selections, undefined, ctx)) {
      if (!f.selections) continue;
      const a = resolveArgs(f.args, vars);
      const size = typeof a.first === 'number' ? a.first : typeof a.last === 'number' ? a.last : undefined;
      if (size !== undefined) {
        let perNode = 0;
        for (const c of collectFields(f.selections, undefined, ctx)) {
          if (c.name === 'nodes') perNode += 1 + costOf(c.selections);
          if (c.name === 'edges') {
            for (const e of collectFields(c.selections ?? [], undefined, ctx)) if (e.name === 'node') perNode += 1 + costOf(e.selections);
          }
        }
        sum += 2 + size * perNode;
      } else if (f.name === 'pageInfo' || f.name === 'edges') {
        sum += costOf(f.selections);
      } else {
        sum += 1 + costOf(f.selections);
      }
    }
    return sum;
  };
  if (op.type === 'mutation') return 10;
  return costOf(op.selections);
}
