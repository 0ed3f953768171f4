import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { classify, classifyResponse } from '../../connectors/kit/classify.js';
import { ConnectorCode, ConnectorError } from '../../connectors/kit/errors.js';

/**
 * One signed HTTP POST to a registered endpoint, with the SSRF guard applied to the address
 * actually connected to: the socket's DNS lookup is ours, so a name that resolves to a private,
 * loopback or link-local address is refused at connect time (no check-then-use gap), and every
 * redirect hop is checked the same way. IP literals never reach a lookup, so they are checked
 * before connecting.
 */

const blocked = new net.BlockList();
for (const [net4, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net4, bits, 'ipv4');
for (const [net6, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96]] as const) blocked.addSubnet(net6, bits, 'ipv6');

/** True for addresses a webhook may not reach (private, loopback, link-local, multicast, ...). */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return true; // not an address at all: refuse
}

export class PrivateTargetError extends Error {
  constructor(readonly address: string, host: string) {
    super(`webhook target ${host} resolves to a private or loopback address (${address}); set WEBHOOK_ALLOW_PRIVATE_TARGETS=true to allow it`);
    this.name = 'PrivateTargetError';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** A `lookup` for sockets that fails when any resolved address is refused. */
const guardedLookup = (refused: (address: string) => boolean) => (hostname: string, options: dns.LookupOptions, cb: LookupCallback): void => {
  dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return cb(err, []);
    const bad = addresses.find((a) => refused(a.address));
    if (bad) return cb(Object.assign(new PrivateTargetError(bad.address, hostname), { code: 'EPRIVATE' }), []);
    if (options.all) return cb(null, addresses);
    cb(null, addresses[0]!.address, addresses[0]!.family);
  });
};

export interface PostOutcome {
  /**
   * delivered (2xx), retry or dead (as the connector kit classifies the failure: 429, 408, 5xx,
   * network and timeouts are retryable; other 4xx and a refused target are not), or aborted: cut
   * short by the caller's `signal` (shutdown), which says nothing of the receiver.
   */
  kind: 'delivered' | 'retry' | 'dead' | 'aborted';
  statusCode: number | null;
  /** Milliseconds from Retry-After, when the receiver sent one. */
  retryAfterMs: number | null;
  error: string | null;
  /** The classified failure, for `retry` and `dead`. */
  failure?: ConnectorError;
}

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 256 }), https: new https.Agent({ keepAlive: true, maxSockets: 256 }) };

/** Retry-After in seconds or as an HTTP date, to milliseconds from `now` (the connector kit's). */
export { parseRetryAfter } from '../../connectors/kit/classify.js';

/** A failed attempt: retry or dead as the failure is classified. */
function failed(failure: ConnectorError, error: string): PostOutcome {
  return { kind: failure.retryable ? 'retry' : 'dead', statusCode: failure.status ?? null, retryAfterMs: failure.retryAfterMs ?? null, error, failure };
}

/** Our own refusal of a target (before or instead of any answer from it): never retried. */
const refusal = (code: ConnectorCode, error: string): PostOutcome => failed(new ConnectorError(code, error, { retryable: false }), error);

const MAX_REDIRECTS = 3;

/** POSTs `body` to `url` with `headers`, following up to three redirects (each one checked). */
export async function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  o: {
    timeoutMs: number;
    allowPrivate: boolean;
    now: () => number;
    /** Aborts the attempt (shutdown): the outcome is `aborted`. */
    signal?: AbortSignal;
    /** Tests: which addresses count as private. */
    refused?: (address: string) => boolean;
  },
): Promise<PostOutcome> {
  const refused = o.allowPrivate ? null : (o.refused ?? isPrivateAddress);
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return refusal(ConnectorCode.Validation, `invalid URL ${url}`);
  }
  const deadline = Date.now() + o.timeoutMs;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      return refusal(ConnectorCode.Validation, `unsupported scheme ${target.protocol}`);
    }
    const host = target.hostname.replace(/^\[|\]$/g, '');
    if (refused && net.isIP(host) && refused(host)) {
      return refusal(ConnectorCode.Forbidden, new PrivateTargetError(host, host).message);
    }
    let res: { status: number; headers: http.IncomingHttpHeaders };
    try {
      res = await once(target, headers, body, Math.max(1, deadline - Date.now()), refused, o.signal);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EPRIVATE' || e instanceof PrivateTargetError) return refusal(ConnectorCode.Forbidden, e.message);
      if (o.signal?.aborted) return { kind: 'aborted', statusCode: null, retryAfterMs: null, error: 'attempt aborted: the worker is stopping' };
      const failure = classify(err, { now: o.now() });
      // our own deadline aborted the request: say so (an OS-level ETIMEDOUT keeps its own text)
      const ours = e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'ABORT_ERR';
      return failed(failure, ours ? `timed out after ${o.timeoutMs} ms` : `${e.code ?? 'ERROR'}: ${e.message}`);
    }
    const s = res.status;
    if (s >= 200 && s < 300) return { kind: 'delivered', statusCode: s, retryAfterMs: null, error: null };
    if (s >= 300 && s < 400 && res.headers.location) {
      target = new URL(res.headers.location, target);
      continue;
    }
    const failure = classifyResponse(res, { now: o.now() });
    return failed(failure, failure.retryable ? `HTTP ${s}` : `HTTP ${s} (not retryable)`);
  }
  return refusal(ConnectorCode.Validation, `more than ${MAX_REDIRECTS} redirects`);
}

function once(target: URL, headers: Record<string, string>, body: string, timeoutMs: number, refused: ((address: string) => boolean) | null, signal?: AbortSignal): Promise<{ status: number; headers: http.IncomingHttpHeaders }> {
  const mod = target.protocol === 'https:' ? https : http;
  // our own timer, not AbortSignal.timeout(): a timeout signal that only AbortSignal.any refers to
  // can be garbage collected before it fires (Node 20), and the POST then waits for the receiver
  // and one controller for both: the caller's signal aborts it through a listener removed after the
  // attempt (AbortSignal.any per POST cost a signal and its bookkeeping on the hot path)
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const onAbort = () => timeout.abort();
  if (signal?.aborted) timeout.abort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const req = mod.request(
      target,
      {
        method: 'POST',
        agent: target.protocol === 'https:' ? agents.https : agents.http,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'concord-webhooks/1', ...headers },
        signal: timeout.signal,
        ...(refused ? { lookup: guardedLookup(refused) as never } : {}),
      },
      (res) => {
        res.resume(); // the body is not needed; drain it so the socket is reused
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        res.on('error', reject);
        // an abort after the headers arrived may end the stream without 'end' or 'error'
        res.on('close', () => (res.complete ? resolve({ status: res.statusCode ?? 0, headers: res.headers }) : reject(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' }))));
      },
    );
    req.on('error', reject);
    req.end(body);
  }).finally(() => {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  });
}
