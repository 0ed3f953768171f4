/**
 * A black-box fuzzer driven by the OpenAPI document: every operation it lists is called with
 * hostile variations of a request built from its own schemas (wrong types, huge strings and
 * arrays, deep nesting, NUL and invalid UTF-8 in every position, duplicate keys, `__proto__`
 * keys, bad content types and lengths, slow and truncated bodies), over a real socket so the
 * bytes go out exactly as written. Every answer must be below 500, every 4xx an RFC 9457
 * problem document, and the server must answer every case (no hang).
 *
 * Deterministic for a seed: the CI test runs a fixed seed, `npm run fuzz` a bigger run.
 */
import net from 'node:net';
import { seeded } from '../../simulator/random.js';

export interface FuzzOptions {
  port: number;
  /** `Bearer ...` values to call with (the first is used most; the others for access paths). */
  tokens: string[];
  seed: number;
  /** Variations per operation. */
  casesPerOperation: number;
  /** An answer slower than this is a hang. */
  timeoutMs?: number;
  /** Operations to leave out (`METHOD /template`), e.g. streams. */
  skip?: (method: string, template: string) => boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface FuzzFailure {
  operation: string;
  mutation: string;
  status: number | 'hang' | 'reset';
  detail: string;
}

export interface FuzzReport {
  operations: number;
  requests: number;
  byStatus: Record<string, number>;
  failures: FuzzFailure[];
}

/** mulberry32 (simulator/random.ts): small, fast and good enough to pick mutations. */
export const prng = seeded;

type Schema = Record<string, unknown>;
interface Operation {
  method: string;
  template: string;
  pathParams: string[];
  query: Array<{ name: string; schema: Schema }>;
  body: Schema | null;
}

interface RawRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
  /** Send the body this slowly (bytes per tick of `tickMs`). */
  trickle?: { bytes: number; tickMs: number };
  /** Send only part of the declared body, then close the socket: no answer is expected. */
  truncate?: boolean;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function operationsOf(doc: { paths: Record<string, Record<string, Schema>>; components?: { schemas?: Record<string, Schema> } }): Operation[] {
  const ops: Operation[] = [];
  for (const [template, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = (op.parameters as Array<{ name: string; in: string; schema?: Schema }> | undefined) ?? [];
      const content = (op.requestBody as { content?: Record<string, { schema?: Schema }> } | undefined)?.content;
      ops.push({
        method: method.toUpperCase(),
        template,
        pathParams: [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
        query: params.filter((p) => p.in === 'query').map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        body: content?.['application/json']?.schema ?? null,
      });
    }
  }
  return ops;
}

/** A plausible value for a schema (the starting point every mutation changes one thing of). */
function sample(schema: Schema | undefined, components: Record<string, Schema>, depth = 0): unknown {
  if (!schema || depth > 8) return null;
  if (typeof schema.$ref === 'string') return sample(components[schema.$ref.split('/').pop()!], components, depth + 1);
  if (schema.enum) return (schema.enum as unknown[])[0];
  if ('const' in schema) return schema.const;
  for (const k of ['anyOf', 'oneOf', 'allOf'] as const) if (Array.isArray(schema[k])) return sample((schema[k] as Schema[])[0], components, depth + 1);
  const type = Array.isArray(schema.type) ? (schema.type as string[]).find((t) => t !== 'null') : (schema.type as string | undefined);
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries((schema.properties as Record<string, Schema>) ?? {})) out[k] = sample(v, components, depth + 1);
      return out;
    }
    case 'array':
      return [sample(schema.items as Schema, components, depth + 1)];
    case 'integer':
    case 'number':
      return typeof schema.minimum === 'number' ? schema.minimum : 1;
    case 'boolean':
      return true;
    case 'string':
      if (schema.format === 'date-time') return '2026-03-01T00:00:00Z';
      if (schema.format === 'uri' || schema.format === 'url') return 'https://example.com/x';
      if (schema.format === 'email') return 'a@example.com';
      return 'x'.repeat(Math.max(1, Number(schema.minLength ?? 1)));
    default:
      return 'x';
  }
}

const HOSTILE_STRINGS = [
  '',
  '\u0000',
  'a\u0000b',
  '\u0001\u001f\u007f',
  '\ud800',
  '__proto__',
  'constructor',
  '../../etc/passwd',
  "'; DROP TABLE actors; --",
  '%00',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
  'x'.repeat(70_000),
];
const HOSTILE_PATH = ['%00', 'a%00b', '%C0%AF', '%FF%FE', '%E2%82', '..%2F..%2Fx', '__proto__', 'constructor', '%25', 'x'.repeat(5_000), '%0D%0Aset-cookie:x', '-1', '9'.repeat(40), '%20', 'a%2Fb'];
const WRONG_VALUES: unknown[] = [null, true, -1, 1.5, 1e308, 'x', '', [], {}, [[[[]]]], { $gt: '' }, 'x'.repeat(70_000), '\u0000'];

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

function deep(depth: number, kind: 'object' | 'array'): string {
  return kind === 'object' ? `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}` : `${'['.repeat(depth)}${']'.repeat(depth)}`;
}

/** Sets a random leaf (or the root) of a sampled body to `value`. */
function setRandom(r: () => number, body: unknown, value: unknown): unknown {
  if (body === null || typeof body !== 'object' || r() < 0.15) return value;
  const keys = Object.keys(body as object);
  if (keys.length === 0) return value;
  const k = pick(r, keys);
  const copy: Record<string, unknown> = Array.isArray(body) ? ([...body] as never) : { ...(body as Record<string, unknown>) };
  copy[k] = r() < 0.5 ? value : setRandom(r, copy[k], value);
  return copy;
}

const JSON_HEADERS = { 'content-type': 'application/json' };

/** One hostile variation of a request to `op`: which, and the bytes. */
function mutate(r: () => number, op: Operation, components: Record<string, Schema>, token: string): { mutation: string; req: RawRequest } {
  const fill = (hostile?: string) => op.template.replace(/\{(\w+)\}/g, () => hostile ?? 'fuzz-id-1');
  const base = (path: string, extra: Partial<RawRequest> = {}): RawRequest => ({ method: op.method, path, headers: { authorization: token, ...(op.body ? JSON_HEADERS : {}) }, ...extra });
  const validBody = op.body ? Buffer.from(JSON.stringify(sample(op.body, components))) : undefined;
  const kinds: string[] = ['query'];
  if (op.pathParams.length > 0) kinds.push('path', 'path');
  if (op.body) kinds.push('type', 'type', 'string', 'deep', 'bytes', 'dupkeys', 'proto', 'ctype', 'length', 'huge', 'notjson', 'slow');
  const kind = pick(r, kinds);
  switch (kind) {
    case 'path': {
      const v = pick(r, HOSTILE_PATH);
      return { mutation: `path param ${v.slice(0, 30)}`, req: base(fill(v), { body: validBody }) };
    }
    case 'query': {
      const q = op.query.length > 0 && r() < 0.8 ? pick(r, op.query).name : pick(r, ['__proto__[polluted]', 'constructor[prototype][x]', 'limit', 'cursor', 'zzz']);
      const v = pick(r, ['%00', '%FF', '-1', '1e400', 'x'.repeat(9_000), '[object Object]', '%C3%28', 'true', '']);
      const twice = r() < 0.3 ? `&${q}=${v}` : '';
      return { mutation: `query ${q}=${v.slice(0, 20)}${twice ? ' (twice)' : ''}`, req: base(`${fill()}?${q}=${v}${twice}`, { body: validBody }) };
    }
    case 'type': {
      const v = pick(r, WRONG_VALUES);
      return { mutation: `wrong type ${JSON.stringify(v).slice(0, 20)}`, req: base(fill(), { body: Buffer.from(JSON.stringify(setRandom(r, sample(op.body!, components), v))) }) };
    }
    case 'string': {
      const v = pick(r, HOSTILE_STRINGS);
      return { mutation: `string ${JSON.stringify(v).slice(0, 20)}`, req: base(fill(), { body: Buffer.from(JSON.stringify(setRandom(r, sample(op.body!, components), v))) }) };
    }
    case 'deep': {
      const depth = pick(r, [65, 500, 5_000, 30_000]);
      const kindOf = r() < 0.5 ? 'object' : 'array';
      const body = JSON.stringify(setRandom(r, sample(op.body!, components), '__DEEP__')).replace('"__DEEP__"', deep(depth, kindOf));
      return { mutation: `deep ${kindOf} ${depth}`, req: base(fill(), { body: Buffer.from(body) }) };
    }
    case 'bytes': {
      const text = JSON.stringify(sample(op.body!, components));
      const at = Math.floor(r() * (text.length + 1));
      const bad = pick(r, [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0x00], [0xf4, 0x90, 0x80, 0x80], [0xef, 0xbb, 0xbf]]);
      const buf = Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bad), Buffer.from(text.slice(at))]);
      return { mutation: `bytes ${bad.map((b) => b.toString(16)).join(' ')} at ${at}`, req: base(fill(), { body: buf }) };
    }
    case 'dupkeys': {
      const s = sample(op.body!, components);
      const keys = s && typeof s === 'object' ? Object.keys(s) : [];
      const k = keys.length > 0 ? pick(r, keys) : 'a';
      const text = JSON.stringify(s).replace(/^\{/, `{${JSON.stringify(k)}:${JSON.stringify(pick(r, WRONG_VALUES))},`);
      return { mutation: `duplicate key ${k}`, req: base(fill(), { body: Buffer.from(text.replace(/,\}$/, '}')) }) };
    }
    case 'proto': {
      const s = sample(op.body!, components);
      const text = JSON.stringify(s);
      const inject = pick(r, ['"__proto__":{"isAdmin":true,"role":"operator"}', '"constructor":{"prototype":{"polluted":1}}', '"__proto__":null', '"prototype":{"x":1}']);
      const body = text.startsWith('{') && text !== '{}' ? `{${inject},${text.slice(1)}` : `{${inject}}`;
      return { mutation: `proto ${inject.slice(0, 24)}`, req: base(fill(), { body: Buffer.from(body) }) };
    }
    case 'ctype': {
      const ct = pick(r, ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/json; charset=utf-16', 'application/xml', '', 'application/json, text/plain', '\u0000']);
      const headers: Record<string, string> = { authorization: token };
      if (ct !== '' && !ct.includes('\u0000')) headers['content-type'] = ct;
      return { mutation: `content-type ${ct || '(none)'}`, req: { method: op.method, path: fill(), headers, body: validBody ?? Buffer.from('{}') } };
    }
    case 'length': {
      const body = validBody ?? Buffer.from('{}');
      if (r() < 0.5) return { mutation: 'content-length longer than the body, then close', req: base(fill(), { body, truncate: true }) };
      return { mutation: 'content-length shorter than the body', req: base(fill(), { body, headers: { authorization: token, ...JSON_HEADERS, 'content-length': String(Math.max(0, body.length - 3)) } }) };
    }
    case 'huge': {
      const n = pick(r, [10_000, 100_000]);
      const big = r() < 0.5 ? Array.from({ length: n }, () => 1) : 'x'.repeat(n * 10);
      return { mutation: `huge ${Array.isArray(big) ? 'array' : 'string'} ${n}`, req: base(fill(), { body: Buffer.from(JSON.stringify(setRandom(r, sample(op.body!, components), big))) }) };
    }
    case 'notjson': {
      const b = pick(r, ['', 'null', '"x"', '[]', '1', '{', '{"a":}', 'nan', '{"a":1}}', '\u0000', '{"a":"\\u0000"}', '{"a":"\\ud800"}']);
      return { mutation: `body ${JSON.stringify(b)}`, req: base(fill(), { body: Buffer.from(b) }) };
    }
    default: {
      return { mutation: 'slow body (a byte every 20 ms)', req: base(fill(), { body: (validBody ?? Buffer.from('{}')).subarray(0, 60), trickle: { bytes: 1, tickMs: 20 } }) };
    }
  }
}

/** Sends one request over a fresh socket; resolves with the answer, 'hang' or 'reset'. */
function send(port: number, req: RawRequest, timeoutMs: number): Promise<RawResponse | 'hang' | 'reset' | 'closed'> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (v: RawResponse | 'hang' | 'reset' | 'closed') => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(req.truncate ? 'closed' : 'hang'), timeoutMs);
    socket.on('error', () => done('reset'));
    socket.on('data', (d) => {
      chunks.push(d);
      const parsed = parse(Buffer.concat(chunks));
      if (parsed) done(parsed);
    });
    socket.on('end', () => done(parse(Buffer.concat(chunks), true) ?? 'reset'));
    socket.on('connect', async () => {
      const body = req.body ?? Buffer.alloc(0);
      const headers = { host: `127.0.0.1:${port}`, connection: 'close', ...req.headers };
      if (!('content-length' in headers) && (req.body !== undefined || req.method !== 'GET')) (headers as Record<string, string>)['content-length'] = String(req.truncate ? body.length + 50 : body.length);
      const head = `${req.method} ${req.path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
      socket.write(head);
      if (req.trickle) {
        for (let i = 0; i < body.length && !settled; i += req.trickle.bytes) {
          socket.write(body.subarray(i, i + req.trickle.bytes));
          await new Promise((r) => setTimeout(r, req.trickle!.tickMs));
        }
      } else if (body.length > 0) socket.write(body);
      if (req.truncate) setTimeout(() => done('closed'), 200);
    });
  });
}

function parse(buf: Buffer, ended = false): RawResponse | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let rest = buf.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length < n) return null;
    return { status, headers, body: rest.subarray(0, n).toString() };
  }
  if (headers['transfer-encoding'] === 'chunked') {
    const out: Buffer[] = [];
    for (;;) {
      const nl = rest.indexOf('\r\n');
      if (nl < 0) return null;
      const size = parseInt(rest.subarray(0, nl).toString(), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(out).toString() };
      if (rest.length < nl + 2 + size + 2) return null;
      out.push(rest.subarray(nl + 2, nl + 2 + size));
      rest = rest.subarray(nl + 2 + size + 2);
    }
  }
  return ended ? { status, headers, body: rest.toString() } : null;
}

/** Checks one answer: below 500, and a 4xx is a problem document whose status matches. */
function judge(res: RawResponse): string | null {
  if (res.status >= 500) return `a ${res.status}: ${res.body.slice(0, 300)}`;
  if (res.status >= 400) {
    if (!/^application\/problem\+json/.test(res.headers['content-type'] ?? '')) return `a ${res.status} that is not a problem document (${res.headers['content-type']})`;
    try {
      const p = JSON.parse(res.body) as { status?: number; title?: string; type?: string };
      if (p.status !== res.status || typeof p.title !== 'string' || typeof p.type !== 'string') return `a problem whose fields do not match: ${res.body.slice(0, 200)}`;
    } catch {
      return `a ${res.status} whose body is not JSON: ${res.body.slice(0, 200)}`;
    }
  }
  return null;
}

export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const docRes = await send(o.port, { method: 'GET', path: '/openapi.json', headers: {} }, timeoutMs);
  if (typeof docRes === 'string' || docRes.status !== 200) throw new Error(`could not read /openapi.json: ${typeof docRes === 'string' ? docRes : docRes.status}`);
  const doc = JSON.parse(docRes.body);
  const components = (doc.components?.schemas ?? {}) as Record<string, Schema>;
  const ops = operationsOf(doc).filter((op) => !o.skip?.(op.method, op.template));
  const r = prng(o.seed);
  const report: FuzzReport = { operations: ops.length, requests: 0, byStatus: {}, failures: [] };
  const total = ops.length * o.casesPerOperation;
  for (const op of ops) {
    for (let i = 0; i < o.casesPerOperation; i++) {
      const token = r() < 0.85 ? o.tokens[0]! : pick(r, o.tokens);
      const { mutation, req } = mutate(r, op, components, token);
      const res = await send(o.port, req, timeoutMs);
      report.requests += 1;
      const operation = `${op.method} ${op.template}`;
      if (res === 'closed') report.byStatus.closed = (report.byStatus.closed ?? 0) + 1;
      else if (res === 'hang' || res === 'reset') {
        report.byStatus[res] = (report.byStatus[res] ?? 0) + 1;
        report.failures.push({ operation, mutation, status: res, detail: res === 'hang' ? `no answer within ${timeoutMs} ms` : 'the connection was reset without an answer' });
      } else {
        report.byStatus[res.status] = (report.byStatus[res.status] ?? 0) + 1;
        const bad = judge(res);
        if (bad) report.failures.push({ operation, mutation, status: res.status, detail: bad });
      }
      o.onProgress?.(report.requests, total);
    }
  }
  return report;
}
