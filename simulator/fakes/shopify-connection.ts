/**
 * Shopify's list conventions in the fake: Relay connections with opaque cursors (first/after,
 * last/before, reverse, sortKey) and the search syntax of the `query` argument.
 */
import { CONNECTION, FieldError, FREE } from './graphql.js';

type Sortable = { id: number; updatedAt?: string; title?: string };

function encodeCursor(node: Sortable, sortKey: string): string {
  const value = sortKey === 'UPDATED_AT' ? node.updatedAt : sortKey === 'TITLE' ? node.title : node.id;
  return Buffer.from(JSON.stringify({ last_id: node.id, last_value: value })).toString('base64');
}

function sortValue(node: Sortable, sortKey: string): string | number {
  if (sortKey === 'UPDATED_AT') return node.updatedAt ?? '';
  if (sortKey === 'TITLE') return node.title ?? '';
  return node.id;
}

function compareNodes(a: Sortable, b: Sortable, sortKey: string): number {
  const va = sortValue(a, sortKey);
  const vb = sortValue(b, sortKey);
  if (va < vb) return -1;
  if (va > vb) return 1;
  return a.id - b.id;
}

/** A Relay connection over `list`, paged as Shopify pages (first/after, last/before, reverse). */
export function connection<T extends Sortable>(typeName: string, list: T[], args: Record<string, unknown>, toNode: (t: T) => unknown): unknown {
  const first = args.first as number | undefined;
  const last = args.last as number | undefined;
  if (first === undefined && last === undefined) throw new FieldError('you must provide one of first or last', { code: 'BAD_REQUEST' });
  if ((first ?? 0) > 250 || (last ?? 0) > 250) throw new FieldError('The first or last argument of a connection may not exceed 250', { code: 'BAD_REQUEST' });
  const sortKey = typeof args.sortKey === 'string' ? args.sortKey : 'ID';
  const sorted = [...list].sort((a, b) => compareNodes(a, b, sortKey));
  if (args.reverse === true) sorted.reverse();
  const position = (cursor: unknown): number => {
    try {
      const c = JSON.parse(Buffer.from(String(cursor), 'base64').toString()) as { last_id: number };
      const i = sorted.findIndex((n) => n.id === c.last_id);
      if (i >= 0) return i;
    } catch {
      /* fall through */
    }
    throw new FieldError(`Invalid cursor for current pagination sort.`, { code: 'BAD_REQUEST' });
  };
  let start = 0;
  let end = sorted.length;
  if (args.after !== undefined && args.after !== null) start = position(args.after) + 1;
  if (args.before !== undefined && args.before !== null) end = position(args.before);
  let page = sorted.slice(start, end);
  let hasNextPage = end < sorted.length;
  let hasPreviousPage = start > 0;
  if (first !== undefined) {
    hasNextPage = hasNextPage || page.length > first;
    page = page.slice(0, first);
  } else if (last !== undefined) {
    hasPreviousPage = hasPreviousPage || page.length > last;
    page = page.slice(Math.max(0, page.length - last));
  }
  const nodes = page.map(toNode);
  const cursors = page.map((n) => encodeCursor(n, sortKey));
  return {
    __typename: `${typeName}Connection`,
    [CONNECTION]: true,
    edges: page.map((_, i) => ({ __typename: `${typeName}Edge`, [FREE]: true, cursor: cursors[i], node: nodes[i] })),
    nodes,
    pageInfo: { __typename: 'PageInfo', [FREE]: true, hasNextPage, hasPreviousPage, startCursor: cursors[0] ?? null, endCursor: cursors.at(-1) ?? null },
  };
}

/**
 * Shopify's search syntax, the part a sync needs: `sku:ABC`, `updated_at:>'2026-01-01T00:00:00Z'`,
 * `id:>123`, terms joined by spaces (AND). Unknown fields are ignored, as Shopify ignores them.
 */
export function matchesSearch(query: unknown, fields: Record<string, string | number | string[] | undefined>): boolean {
  if (typeof query !== 'string' || query.trim() === '') return true;
  const terms = query.match(/(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)/g) ?? [];
  for (const term of terms) {
    const m = /^(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)$/.exec(term)!;
    const field = m[1]!;
    const op = m[2] ?? '=';
    const want = m[3]!.replace(/^['"]|['"]$/g, '');
    const have = fields[field];
    if (have === undefined) continue;
    const values = Array.isArray(have) ? have : [have];
    const ok = values.some((v) => {
      const a = typeof v === 'number' ? v : field.endsWith('_at') ? Date.parse(v) : v;
      const b = typeof v === 'number' ? Number(want) : field.endsWith('_at') ? Date.parse(want) : want;
      if (op === '=') return a === b;
      if (op === '>') return a > b;
      if (op === '>=') return a >= b;
      if (op === '<') return a < b;
      return a <= b;
    });
    if (!ok) return false;
  }
  return true;
}
