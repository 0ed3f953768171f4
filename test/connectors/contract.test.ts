import { afterAll, afterEach, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { classify } from '../../connectors/kit/classify.js';
import { defineConnector, invokerOf, type CallContext, type InputOf, type OutputOf } from '../../connectors/kit/contract.js';
import { ConnectorCode, ConnectorError } from '../../connectors/kit/errors.js';
import type { ProviderUnderTest } from './contract/adapter.js';
import { genericAdapter } from './contract/generic.js';
import { mercadolibreAdapter } from './contract/mercadolibre.js';
import { shopifyAdapter } from './contract/shopify.js';

const ctx = (): CallContext => ({ signal: new AbortController().signal, idempotencyKey: 'probe/1@1#0' });

const crm = defineConnector({
  id: 'crm',
  auth: 'oauth2',
  calls: {
    getContact: async (creds, input: { id: string }) => ({ id: input.id, token: creds.accessToken }),
    failing: async () => {
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    },
    declined: async () => {
      throw new ConnectorError('CARD_DECLINED', 'insufficient funds', { retryable: false });
    },
  },
  mapping: { contact: { fromProvider: (c: { id: string }) => ({ externalId: c.id }) } },
  classify: (err) => classify(err, { context: 'crm' }),
});

describe('the connector contract', () => {
  it('keeps each call’s own types, and ties credentials to the authentication pattern', () => {
    expectTypeOf<InputOf<typeof crm, 'getContact'>>().toEqualTypeOf<{ id: string }>();
    expectTypeOf<OutputOf<typeof crm, 'getContact'>>().toEqualTypeOf<{ id: string; token: string }>();
    // @ts-expect-error an api_key credential is not an oauth2 one
    invokerOf(crm, async () => ({ apiKey: 'k' }));
    // @ts-expect-error oauth2 credentials have no apiKey
    defineConnector({ id: 'bad', auth: 'oauth2', calls: { x: async (creds) => creds.apiKey }, mapping: {}, classify });
  });

  it('defineConnector checks the id and that there is a call, and freezes the module', () => {
    expect(() => defineConnector({ id: 'Shop Ify', auth: 'api_key', calls: { x: async () => 1 }, mapping: {}, classify })).toThrow(/lowercase/);
    expect(() => defineConnector({ id: 'empty', auth: 'api_key', calls: {}, mapping: {}, classify })).toThrow(/no calls/);
    expect(Object.isFrozen(crm)).toBe(true);
  });

  it('invokerOf: calls with the account’s credentials; every failure leaves as a ConnectorError through the provider’s classify', async () => {
    const invoke = invokerOf(crm, async () => ({ accessToken: 'at-1' }));
    expect(await invoke('getContact', { id: 'c9' }, ctx())).toEqual({ id: 'c9', token: 'at-1' });
    await expect(invoke('failing', {}, ctx())).rejects.toMatchObject({ name: 'ConnectorError', code: ConnectorCode.Network, retryable: true, message: 'crm: ECONNRESET: socket hang up' });
    await expect(invoke('declined', {}, ctx())).rejects.toMatchObject({ code: 'CARD_DECLINED', retryable: false });
    await expect(invoke('toString', {}, ctx())).rejects.toMatchObject({ code: ConnectorCode.Validation, retryable: false });
  });

  it('invokerOf: a provider classify that throws falls back to the kit’s classification', async () => {
    const broken = defineConnector({
      id: 'broken',
      auth: 'api_key',
      calls: { get: async () => Promise.reject(Object.assign(new Error('reset'), { code: 'ECONNRESET' })) },
      mapping: {},
      classify: () => {
        throw new Error('classify bug');
      },
    });
    await expect(invokerOf(broken, async () => ({ apiKey: 'k' }))('get', {}, ctx())).rejects.toMatchObject({ code: ConnectorCode.Network, retryable: true });
  });
});

// ------------------------------------------------------------------------------------------------
// The provider contract suite: the same cases against every provider and its local fake server
// (per-provider adapters in ./contract/). The generic connector's four authentication patterns
// follow in their own block.
// ------------------------------------------------------------------------------------------------

const providers: ProviderUnderTest[] = [shopifyAdapter(), mercadolibreAdapter(), genericAdapter()];

/** What every classified failure must look like for the runtime. */
function expectFailure(err: unknown, code: string, retryable: boolean): ConnectorError {
  expect(err).toBeInstanceOf(ConnectorError);
  expect(err).toMatchObject({ code, retryable });
  return err as ConnectorError;
}

describe.each(providers.map((p) => [p.name, p] as const))('the provider contract: %s', (_name, p) => {
  beforeAll(() => p.setup(), 30_000);
  afterAll(() => p.teardown());
  afterEach(() => p.clearFaults());

  it.runIf(p.oauth !== undefined)('authorize + callback + code exchange (the browser played by the test); a tampered callback is refused', async () => {
    const ok = await p.oauth!.connect();
    expect(ok.callbackOk).toBe(true);
    await expect(p.probe(ok.creds!)).resolves.toBeDefined();
    const tampered = await p.oauth!.connect({ tamper: (q) => q.set('state', 'forged') });
    expect(tampered.callbackOk).toBe(false);
  });

  it.runIf(p.oauth !== undefined)('an expiring token: the dead access token is UNAUTHORIZED (retryable), the refresh rotates, the old refresh token per the provider’s rule', async () => {
    const { creds } = await p.oauth!.connect();
    p.oauth!.expireAccess();
    expectFailure(await p.probe(creds!).catch((e: unknown) => e), ConnectorCode.Unauthorized, true);
    const next = await p.oauth!.refresh(creds!);
    expect(next.refreshToken).not.toBe(creds!.refreshToken);
    const again = await p.oauth!.refresh(creds!).catch((e: unknown) => e);
    if (p.oauth!.refreshKind === 'single-use') {
      expectFailure(again, ConnectorCode.ReauthorizationRequired, false);
      await expect(p.probe(next)).resolves.toBeDefined();
    } else {
      // Shopify's grace: the old refresh token works until its replacement is first used
      expect(again).not.toBeInstanceOf(Error);
      await expect(p.probe(again as Record<string, unknown>)).resolves.toBeDefined();
      expectFailure(await p.oauth!.refresh(creds!).catch((e: unknown) => e), ConnectorCode.ReauthorizationRequired, false);
    }
  });

  it('paginates to the end over more than one page', async () => {
    const creds = await p.credentials();
    const { keys, expected, pages } = await p.listAll(creds);
    expect(pages).toBeGreaterThan(1);
    expect([...keys].sort()).toEqual([...expected].sort());
  });

  it('writes with compare-and-set; a stale expectation is a terminal CONFLICT and changes nothing', async () => {
    const creds = await p.credentials();
    const r = await p.casWrite(creds);
    expect(r.after).toBe(r.expectedAfter);
    expectFailure(r.stale, ConnectorCode.Conflict, false);
    expect(r.afterStale).toBe(r.expectedAfter);
  });

  it('throttling answers are RATE_LIMITED, retryable, with retryAfterMs', async () => {
    const creds = await p.credentials();
    await p.probe(creds);
    for (const t of await p.throttled(creds)) {
      const e = expectFailure(t.error, ConnectorCode.RateLimited, true);
      expect(e.retryAfterMs, t.what).toBeGreaterThan(0);
      if (t.expectRetryAfterMs !== undefined) expect(Math.abs(e.retryAfterMs! - t.expectRetryAfterMs), `${t.what}: ${e.retryAfterMs}`).toBeLessThanOrEqual(t.expectRetryAfterMs * 0.25 + 100);
    }
  });

  it('webhooks: a real delivery verifies and parses; bad signatures and foreign senders are refused', async () => {
    const w = await p.webhook();
    expect(w.webhooks.verify(w.good, w.secret, Date.now())).toEqual({ ok: true });
    expect(w.webhooks.parse(w.good)[0]).toMatchObject(w.expect);
    expect(w.bad.length).toBeGreaterThan(0);
    for (const bad of w.bad) expect(w.webhooks.verify(bad, w.secret, Date.now()).ok).toBe(false);
  });

  it('error answers: 5xx retryable (with Retry-After), 404-style refusals terminal', async () => {
    const creds = await p.credentials();
    await p.probe(creds);
    p.fail(503, 7);
    const e = expectFailure(await p.probe(creds).catch((x: unknown) => x), ConnectorCode.Unavailable, true);
    expect(e.retryAfterMs).toBe(7000);
    p.fail(500);
    expectFailure(await p.probe(creds).catch((x: unknown) => x), ConnectorCode.Unavailable, true);
  });

  it('a hang is cut by the caller’s signal and classified TIMEOUT (retryable)', async () => {
    const creds = await p.credentials();
    await p.probe(creds);
    p.hang();
    const started = Date.now();
    expectFailure(await p.probe(creds, AbortSignal.timeout(300)).catch((x: unknown) => x), ConnectorCode.Timeout, true);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a revoked grant ends REAUTHORIZATION_REQUIRED (after the refresh it allows, if any)', async () => {
    const creds = await p.credentials();
    await p.probe(creds);
    p.revoke();
    let err = await p.probe(creds).catch((x: unknown) => x);
    if (err instanceof ConnectorError && err.code === ConnectorCode.Unauthorized && p.recover) err = await p.recover(creds).catch((x: unknown) => x);
    expectFailure(err, ConnectorCode.ReauthorizationRequired, false);
  });
});
