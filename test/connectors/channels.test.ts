import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideRetry } from '../../connectors/kit/retry.js';
import { loadConfig } from '../../runtime/config.js';
import { postWebhook } from '../../services/events/webhook.js';
import { deliveryRetryPolicy } from '../../services/events/worker.js';

/** The webhook channel of cross-integration events classifies and retries through the kit. */

const NOW = Date.parse('2026-03-01T12:00:00Z');
let base = '';
const server = http.createServer((req, res) => {
  const [status, retryAfter] = req.url!.slice(1).split('/');
  res.writeHead(Number(status), retryAfter ? { 'retry-after': decodeURIComponent(retryAfter) } : {}).end();
});
beforeAll(async () => {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const post = (path: string) => postWebhook(`${base}/${path}`, {}, '{}', { timeoutMs: 2_000, allowPrivate: true, now: () => NOW });

describe('the webhook channel', () => {
  it('answers are retried or dead-lettered as the kit classifies them', async () => {
    expect(await post('425')).toMatchObject({ kind: 'retry', statusCode: 425, error: 'HTTP 425', failure: { code: 'UNAVAILABLE' } });
    expect(await post('504')).toMatchObject({ kind: 'retry', statusCode: 504, failure: { code: 'TIMEOUT' } });
    expect(await post('401')).toMatchObject({ kind: 'dead', statusCode: 401, error: 'HTTP 401 (not retryable)', failure: { code: 'REAUTHORIZATION_REQUIRED' } });
    expect(await post('409')).toMatchObject({ kind: 'dead', failure: { code: 'CONFLICT', retryable: false } });
    const date = encodeURIComponent(new Date(NOW + 30_000).toUTCString());
    expect(await post(`503/${date}`)).toMatchObject({ kind: 'retry', statusCode: 503, retryAfterMs: 30_000, failure: { code: 'UNAVAILABLE', retryAfterMs: 30_000 } });
  });

  it('a refused target is a terminal failure of the same type', async () => {
    expect(await postWebhook('ftp://example.com/x', {}, '{}', { timeoutMs: 100, allowPrivate: true, now: () => NOW })).toMatchObject({ kind: 'dead', failure: { code: 'VALIDATION', retryable: false } });
  });

  it('the delivery policy: doubling from EVENT_RETRY_BACKOFF_MS to EVENT_RETRY_MAX_MS, EVENT_MAX_ATTEMPTS in all, Retry-After up to an hour', () => {
    const policy = deliveryRetryPolicy(loadConfig({ EVENT_MAX_ATTEMPTS: '5', EVENT_RETRY_BACKOFF_MS: '1000', EVENT_RETRY_MAX_MS: '5000' }).events);
    expect([1, 2, 3, 4].map((n) => decideRetry({ retryable: true }, n, policy))).toEqual([1_000, 2_000, 4_000, 5_000].map((delayMs) => ({ retry: true, delayMs })));
    expect(decideRetry({ retryable: true }, 5, policy)).toEqual({ retry: false });
    expect(decideRetry({ retryable: true, retryAfterMs: 7_200_000 }, 1, policy)).toEqual({ retry: true, delayMs: 3_600_000 });
  });
});
