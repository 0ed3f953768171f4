/**
 * Step conditions: a small, pure expression language over the workflow and earlier step
 * outputs, so a condition is data (stored in the snapshot, replayed identically), never code.
 *
 * ```
 * steps.1.output.approved == true && workflow.workflowType != 'DATA_SYNC'
 * !(steps.2.status == 'SKIPPED') || workflow.metadata.tier >= 2
 * ```
 * Operands: paths (`a.b.3.c`; a missing segment is null), 'strings' or "strings", numbers,
 * true, false, null. Operators, loosest first: `||`, `&&`, `== != < <= > >=`, `!`, parentheses.
 * Comparisons are strict (no coercion); `<`-family compare numbers or strings of one kind only,
 * else false. A value is truthy as in JavaScript.
 */

type Token = { k: 'path' | 'str' | 'num' | 'op' | 'lit'; v: string };
export type ConditionNode =
  | { t: 'lit'; v: unknown }
  | { t: 'path'; p: string[] }
  | { t: 'not'; e: ConditionNode }
  | { t: 'bin'; op: string; l: ConditionNode; r: ConditionNode };

export class ConditionSyntaxError extends Error {}

const TOKEN = /\s*(?:(\|\||&&|==|!=|<=|>=|<|>|!|\(|\))|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(-?\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*))/y;

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    TOKEN.lastIndex = i;
    const m = TOKEN.exec(src);
    if (!m) throw new ConditionSyntaxError(`unexpected '${src.slice(i).trim().slice(0, 12)}' at ${i}`);
    i = TOKEN.lastIndex;
    if (m[1]) out.push({ k: 'op', v: m[1] });
    else if (m[2] !== undefined) out.push({ k: 'str', v: m[2].replace(/\\(.)/g, '$1') });
    else if (m[3] !== undefined) out.push({ k: 'str', v: m[3].replace(/\\(.)/g, '$1') });
    else if (m[4] !== undefined) out.push({ k: 'num', v: m[4] });
    else if (['true', 'false', 'null'].includes(m[5]!)) out.push({ k: 'lit', v: m[5]! });
    else out.push({ k: 'path', v: m[5]! });
  }
  return out;
}

/** Parses a condition; throws ConditionSyntaxError with the position of the problem. */
export function parseCondition(src: string): ConditionNode {
  const toks = tokenize(src);
  let pos = 0;
  const peek = () => toks[pos];
  const eat = (v: string) => {
    if (peek()?.k === 'op' && peek()!.v === v) {
      pos++;
      return true;
    }
    return false;
  };
  const or = (): ConditionNode => {
    let l = and();
    while (eat('||')) l = { t: 'bin', op: '||', l, r: and() };
    return l;
  };
  const and = (): ConditionNode => {
    let l = cmp();
    while (eat('&&')) l = { t: 'bin', op: '&&', l, r: cmp() };
    return l;
  };
  const cmp = (): ConditionNode => {
    const l = unary();
    for (const op of ['==', '!=', '<=', '>=', '<', '>']) if (eat(op)) return { t: 'bin', op, l, r: unary() };
    return l;
  };
  const unary = (): ConditionNode => {
    if (eat('!')) return { t: 'not', e: unary() };
    if (eat('(')) {
      const e = or();
      if (!eat(')')) throw new ConditionSyntaxError('missing )');
      return e;
    }
    const tok = toks[pos++];
    if (!tok) throw new ConditionSyntaxError('unexpected end of condition');
    switch (tok.k) {
      case 'str':
        return { t: 'lit', v: tok.v };
      case 'num':
        return { t: 'lit', v: Number(tok.v) };
      case 'lit':
        return { t: 'lit', v: tok.v === 'true' ? true : tok.v === 'false' ? false : null };
      case 'path':
        return { t: 'path', p: tok.v.split('.') };
      default:
        throw new ConditionSyntaxError(`unexpected '${tok.v}'`);
    }
  };
  if (toks.length === 0) throw new ConditionSyntaxError('empty condition');
  const tree = or();
  if (pos < toks.length) throw new ConditionSyntaxError(`unexpected '${toks[pos]!.v}'`);
  return tree;
}

function lookup(scope: unknown, path: string[]): unknown {
  let cur = scope;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, seg)) return null;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur ?? null;
}

const same = (a: unknown, b: unknown): boolean => (a !== null && typeof a === 'object') || (b !== null && typeof b === 'object') ? JSON.stringify(a) === JSON.stringify(b) : a === b;

function evaluate(n: ConditionNode, scope: unknown): unknown {
  switch (n.t) {
    case 'lit':
      return n.v;
    case 'path':
      return lookup(scope, n.p);
    case 'not':
      return !evaluate(n.e, scope);
    case 'bin': {
      if (n.op === '&&') return Boolean(evaluate(n.l, scope)) && Boolean(evaluate(n.r, scope));
      if (n.op === '||') return Boolean(evaluate(n.l, scope)) || Boolean(evaluate(n.r, scope));
      const l = evaluate(n.l, scope);
      const r = evaluate(n.r, scope);
      if (n.op === '==') return same(l, r);
      if (n.op === '!=') return !same(l, r);
      const comparable = (typeof l === 'number' && typeof r === 'number') || (typeof l === 'string' && typeof r === 'string');
      if (!comparable) return false;
      const a = l as number | string;
      const b = r as number | string;
      return n.op === '<' ? a < b : n.op === '<=' ? a <= b : n.op === '>' ? a > b : a >= b;
    }
  }
}

/** Evaluates a condition against `scope`; true or false. */
export function evaluateCondition(src: string, scope: unknown): boolean {
  return Boolean(evaluate(parseCondition(src), scope));
}

/** Every path a condition reads (`steps.1.output.x` as `['steps', '1', 'output', 'x']`). */
export function pathsOf(node: ConditionNode): string[][] {
  switch (node.t) {
    case 'lit':
      return [];
    case 'path':
      return [node.p];
    case 'not':
      return pathsOf(node.e);
    case 'bin':
      return [...pathsOf(node.l), ...pathsOf(node.r)];
  }
}
