import { describe, expect, expectTypeOf, it } from 'vitest';
import { classify } from '../../connectors/kit/classify.js';
import { defineConnector, invokerOf, type CallContext, type InputOf, type OutputOf } from '../../connectors/kit/contract.js';
import { ConnectorCode, ConnectorError } from '../../connectors/kit/errors.js';

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
