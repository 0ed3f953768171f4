import { cell, fields, table, type Colors } from './output.js';

/** A state value as a path: `"open"`, `{ active: "open" }` is `active.open`, parallel regions joined by `, `. */
export function statePath(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value !== 'object' || value === null) return cell(value);
  return Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => {
      const inner = statePath(v);
      if (!inner) return k;
      return inner.includes(', ') ? `${k}.(${inner})` : `${k}.${inner}`;
    })
    .join(', ');
}

const when = (iso: unknown) => (typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : cell(iso));

type Row = Record<string, unknown>;

export function actorsTable(rows: Row[], c: Colors): string {
  return table(
    ['TYPE', 'ID', 'STATUS', 'STATE', 'VERSION', 'PAUSED', 'UPDATED'],
    rows.map((a) => [cell(a.type), cell(a.id), cell(a.status), statePath(a.value), cell(a.version), a.paused ? c.yellow('paused') : '', when(a.updatedAt)]),
    c,
  );
}

export function actorView(a: Row, c: Colors): string {
  const timers = (a.timers ?? []) as Row[];
  const head = fields(
    [
      ['type', a.type],
      ['id', a.id],
      ['tenant', a.tenant],
      ['status', a.status],
      ['state', statePath(a.value)],
      ['version', a.version],
      ['machine version', a.machineVersion],
      ['paused', a.paused ? `${(a.paused as Row).by} at ${when((a.paused as Row).at)}: ${(a.paused as Row).reason}` : 'no'],
      ['forked from', a.forkedFrom ? `${(a.forkedFrom as Row).type}/${(a.forkedFrom as Row).id}@${(a.forkedFrom as Row).version}` : ''],
      ['accepts', ((a.accepts ?? []) as string[]).join(', ')],
      ['updated', when(a.updatedAt)],
    ],
    c,
  );
  const t = timers.length ? `\n\n${c.bold('pending timers')}\n${table(['EVENT', 'DUE', 'TARGET'], timers.map((x) => [cell(x.event), when(x.dueAt), cell(x.targetPath)]), c)}` : '';
  return `${head}${t}\n\n${c.bold('context')}\n${JSON.stringify(a.context, null, 2)}`;
}

export function historyTable(rows: Row[], c: Colors): string {
  return table(
    ['VERSION', 'KIND', 'EVENT', 'STATE AFTER', 'AT', 'TRACE'],
    rows.map((e) => [cell(e.version), cell(e.kind), cell((e.event as Row | undefined)?.type), statePath(e.value), when(e.at), cell(e.traceId)]),
    c,
  );
}

export function timersTable(rows: Row[], c: Colors): string {
  return table(
    ['ID', 'ACTOR', 'EVENT', 'DUE', 'CLAIMED', 'PAUSED'],
    rows.map((t) => [cell(t.id), `${cell(t.actorType)}/${cell(t.actorId)}`, cell(t.event), when(t.dueAt), when(t.claimedUntil), t.actorPaused ? c.yellow('paused') : '']),
    c,
  );
}

export function deadLettersTable(rows: Row[], c: Colors): string {
  return table(
    ['ID', 'REASON', 'ACTOR', 'SUBJECT', 'EVENT', 'ATTEMPTS', 'CREATED', 'REPLAYED'],
    rows.map((d) => [
      cell(d.id),
      cell(d.reason),
      d.actorType ? `${cell(d.actorType)}/${cell(d.actorId)}` : '',
      cell(d.subject),
      cell((d.payload as Row | null)?.type),
      cell(d.attempts),
      when(d.createdAt),
      when(d.replayedAt),
    ]),
    c,
  );
}

export function deadLetterView(d: Row, c: Colors): string {
  return `${fields(
    [
      ['id', d.id],
      ['origin', d.origin],
      ['reason', d.reason],
      ['subject', d.subject],
      ['actor', d.actorType ? `${d.actorType}/${d.actorId}` : ''],
      ['message id', d.messageId],
      ['attempts', d.attempts],
      ['error', d.error],
      ['created', when(d.createdAt)],
      ['replayed', when(d.replayedAt)],
    ],
    c,
  )}\n\n${c.bold('payload')}\n${JSON.stringify(d.payload, null, 2)}`;
}

/** Any list: the scalar fields the rows share, in the order of the first row. */
export function genericTable(rows: Row[], c: Colors, prefer: string[] = []): string {
  if (rows.length === 0) return c.dim('(none)');
  const keys = Object.keys(rows[0]!).filter((k) => rows.every((r) => r[k] === null || r[k] === undefined || typeof r[k] !== 'object'));
  const cols = [...prefer.filter((k) => keys.includes(k)), ...keys.filter((k) => !prefer.includes(k))].slice(0, 8);
  return table(
    cols.map((k) => k.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()),
    rows.map((r) => cols.map((k) => (/At$/.test(k) ? when(r[k]) : cell(r[k])))),
    c,
  );
}

/** Any object: its scalar fields as lines, then the rest as JSON. */
export function genericView(o: Row, c: Colors): string {
  const scalars = Object.entries(o).filter(([, v]) => v === null || typeof v !== 'object');
  const rest = Object.entries(o).filter(([, v]) => v !== null && typeof v === 'object');
  const parts = [scalars.length ? fields(scalars, c) : ''];
  for (const [k, v] of rest) {
    if (Array.isArray(v) && v.length && v.every((x) => typeof x === 'object' && x !== null && !Array.isArray(x))) parts.push(`${c.bold(k)}\n${genericTable(v as Row[], c)}`);
    else parts.push(`${c.bold(k)}\n${JSON.stringify(v, null, 2)}`);
  }
  return parts.filter(Boolean).join('\n\n');
}
