import net, { type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { classify, classifyResponse, parseRetryAfter } from '../../connectors/kit/classify.js';
import { ConnectorCode, ConnectorError, isRateLimited, isRetryable, isTerminal, needsReauthorization } from '../../connectors/kit/errors.js';

const NOW = Date.parse('2026-03-01T12:00:00Z');
const sysErr = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('classifyResponse: every HTTP status', () => {
  const table: Array<[status: number, code: string, retryable: boolean]> = [
    [400, ConnectorCode.Validation, false],
    [401, ConnectorCode.ReauthorizationRequired, false],
    [402, ConnectorCode.Validation, false],
    [403, ConnectorCode.Forbidden, false],
    [404, ConnectorCode.NotFound, false],
    [405, ConnectorCode.Validation, false],
    [408, ConnectorCode.Timeout, true],
    [409, ConnectorCode.Conflict, false],
    [410, ConnectorCode.NotFound, false],
    [413, ConnectorCode.Validation, false],
    [422, ConnectorCode.Validation, false],
    [425, ConnectorCode.Unavailable, true],
    [429, ConnectorCode.RateLimited, true],
    [500, ConnectorCode.Unavailable, true],
    [501, ConnectorCode.Unavailable, true],
    [502, ConnectorCode.Unavailable, true],
    [503, ConnectorCode.Unavailable, true],
    [504, ConnectorCode.Timeout, true],
    [599, ConnectorCode.Unavailable, true],
    [304, ConnectorCode.Unknown, false],
    [100, ConnectorCode.Unknown, false],
  ];
  it.each(table)('HTTP %i is %s, retryable %s', (status, code, retryable) => {
    const e = classifyResponse({ status });
    expect(e).toBeInstanceOf(ConnectorError);
    expect({ code: e.code, retryable: e.retryable, status: e.status, retryAfterMs: e.retryAfterMs }).toEqual({ code, retryable, status, retryAfterMs: undefined });
  });

  it('a 401 is retryable UNAUTHORIZED only when the caller can refresh the token', () => {
    expect(classifyResponse({ status: 401 }, { canRefresh: true })).toMatchObject({ code: ConnectorCode.Unauthorized, retryable: true });
    expect(needsReauthorization(classifyResponse({ status: 401 }))).toBe(true);
    expect(needsReauthorization(classifyResponse({ status: 401 }, { canRefresh: true }))).toBe(false);
  });

  it('reads Retry-After in seconds and as an HTTP date, from fetch Headers and node:http headers alike', () => {
    expect(classifyResponse({ status: 429, headers: { 'retry-after': '7' } }, { now: NOW })).toMatchObject({ code: 'RATE_LIMITED', retryable: true, retryAfterMs: 7_000 });
    expect(classifyResponse({ status: 503, headers: new Headers({ 'Retry-After': new Date(NOW + 90_000).toUTCString() }) }, { now: NOW })).toMatchObject({ code: 'UNAVAILABLE', retryAfterMs: 90_000 });
    expect(classifyResponse({ status: 429, headers: { 'Retry-After': ['3', '9'] } }, { now: NOW }).retryAfterMs).toBe(3_000);
    // a date in the past means "now"; garbage means "not said"
    expect(classifyResponse({ status: 503, headers: { 'retry-after': new Date(NOW - 5_000).toUTCString() } }, { now: NOW }).retryAfterMs).toBe(0);
    expect(classifyResponse({ status: 429, headers: { 'retry-after': 'soon' } }, { now: NOW }).retryAfterMs).toBeUndefined();
    expect(classifyResponse({ status: 429, headers: { 'retry-after': '-3' } }, { now: NOW }).retryAfterMs).toBeUndefined();
    // only a retryable answer carries it: a 400 with Retry-After is still final
    expect(classifyResponse({ status: 400, headers: { 'retry-after': '7' } }, { now: NOW })).toMatchObject({ retryable: false, retryAfterMs: undefined });
  });

  it('parseRetryAfter: seconds, HTTP date, blank', () => {
    expect(parseRetryAfter(' 3 ', 0)).toBe(3_000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6_000);
    expect(parseRetryAfter('', 0)).toBeUndefined();
    expect(parseRetryAfter(null, 0)).toBeUndefined();
  });

  it('a fetch Response thrown as is is classified by its status and headers', () => {
    const res = new Response('slow down', { status: 429, headers: { 'retry-after': '2' } });
    expect(classify(res, { now: NOW, context: 'shop orders.list' })).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 2_000, message: 'shop orders.list: HTTP 429' });
  });
});

describe('classify: thrown failures', () => {
  it.each([
    ['ECONNREFUSED', ConnectorCode.Network],
    ['ECONNRESET', ConnectorCode.Network],
    ['EAI_AGAIN', ConnectorCode.Network],
    ['ENOTFOUND', ConnectorCode.Network],
    ['EPIPE', ConnectorCode.Network],
    ['EHOSTUNREACH', ConnectorCode.Network],
    ['ENETUNREACH', ConnectorCode.Network],
    ['UND_ERR_SOCKET', ConnectorCode.Network],
    ['UND_ERR_CLOSED', ConnectorCode.Network],
    ['ETIMEDOUT', ConnectorCode.Timeout],
    ['ABORT_ERR', ConnectorCode.Timeout],
    ['UND_ERR_CONNECT_TIMEOUT', ConnectorCode.Timeout],
    ['UND_ERR_HEADERS_TIMEOUT', ConnectorCode.Timeout],
    ['UND_ERR_BODY_TIMEOUT', ConnectorCode.Timeout],
  ])('a Node/undici %s error is retryable %s, directly and as the cause of fetch\'s TypeError', (code, expected) => {
    const direct = classify(sysErr(code));
    expect({ code: direct.code, retryable: direct.retryable }).toEqual({ code: expected, retryable: true });
    // fetch rejects with TypeError('fetch failed') and the socket error as its cause (sometimes two deep)
    const wrapped = new TypeError('fetch failed', { cause: new Error('socket', { cause: sysErr(code) }) });
    const viaCause = classify(wrapped);
    expect({ code: viaCause.code, retryable: viaCause.retryable }).toEqual({ code: expected, retryable: true });
    expect(viaCause.cause).toBe(wrapped);
  });

  it('an AbortSignal timeout and an abort are retryable TIMEOUTs', async () => {
    const timedOut = AbortSignal.timeout(1);
    await new Promise<void>((resolve) => timedOut.addEventListener('abort', () => resolve()));
    expect(classify(timedOut.reason)).toMatchObject({ code: 'TIMEOUT', retryable: true });
    const ac = new AbortController();
    ac.abort();
    expect(classify(ac.signal.reason)).toMatchObject({ code: 'TIMEOUT', retryable: true });
  });

  it('a real refused connection through fetch is a retryable NETWORK failure', async () => {
    // a port that was just free: nothing listens there
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const err = await fetch(`http://127.0.0.1:${port}/`).then(
      () => null,
      (e: unknown) => e,
    );
    expect(classify(err)).toMatchObject({ code: 'NETWORK', retryable: true });
  });

  it('a ConnectorError is returned as it is, a provider code with it', () => {
    const e = new ConnectorError('CARD_DECLINED', 'insufficient funds', { retryable: false });
    expect(classify(e)).toBe(e);
    expect(isTerminal(e)).toBe(true);
    const r = new ConnectorError(ConnectorCode.RateLimited, 'slow down', { retryAfterMs: 1_500.4 });
    expect(classify(r)).toBe(r);
    expect([isRateLimited(r), isRetryable(r), r.retryAfterMs]).toEqual([true, true, 1_500]);
  });

  it('anything unknown is a retryable UNKNOWN, and no duck-typed `retryable` or `code` on it is trusted', () => {
    for (const thrown of [new Error('sdk exploded'), 'a string', 42, null, undefined, { retryable: false, code: 'DECLINED' }, Object.assign(new Error('x'), { retryable: false, code: 'DECLINED' })]) {
      const e = classify(thrown);
      expect({ code: e.code, retryable: e.retryable }, String(thrown)).toEqual({ code: ConnectorCode.Unknown, retryable: true });
    }
    expect(classify(new Error('sdk exploded'), { context: 'shop orders.get' }).message).toBe('shop orders.get: sdk exploded');
  });

  it('the standard codes default their retryability; a provider code must state it; predicates never accept a raw error', () => {
    expect(new ConnectorError(ConnectorCode.NotFound, 'gone').retryable).toBe(false);
    expect(new ConnectorError(ConnectorCode.Unavailable, 'down').retryable).toBe(true);
    expect(new ConnectorError(ConnectorCode.Unavailable, 'down, and it will stay so', { retryable: false }).retryable).toBe(false);
    expect(isRetryable(Object.assign(new Error('x'), { retryable: true }))).toBe(false);
    expect(new ConnectorError(ConnectorCode.RateLimited, 'wait', { retryAfterMs: 2_000, status: 429 }).toFailure()).toEqual({ code: 'RATE_LIMITED', message: 'wait', retryable: true, retryAfterMs: 2_000, status: 429 });
    expect(JSON.parse(JSON.stringify(new ConnectorError(ConnectorCode.NotFound, 'gone').toFailure()))).toEqual({ code: 'NOT_FOUND', message: 'gone', retryable: false });
    expect(new ConnectorError(ConnectorCode.Unknown, 'x'.repeat(10_000)).toFailure().message).toHaveLength(2_000);
  });
});
