import { assign, setup } from 'xstate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../runtime/db.js';
import { ErrorCode } from '../../runtime/errors.js';
import type { ActorTypeDefinition, PersistedSnapshot } from '../../runtime/registry.js';
import { Registry } from '../../runtime/registry.js';
import { freshDatabase } from '../helpers/db.js';
import { testRuntime } from '../helpers/runtime.js';

/** Version 1 of an order: states new -> charged, amount in cents as `amt`. */
const v1 = setup({ types: { context: {} as { amt: number }, events: {} as { type: 'pay' } | { type: 'legacy' } } }).createMachine({
  id: 'order',
  context: { amt: 1000 },
  initial: 'new',
  states: { new: { on: { pay: 'charged', legacy: 'legacyState' } }, charged: {}, legacyState: {} },
});
/** Version 2: `charged` renamed `paid`, `amt` renamed `amountCents`, `legacyState` removed. */
const v2 = setup({
  types: { context: {} as { amountCents: number; refunds: number }, events: {} as { type: 'pay' } | { type: 'refund' } },
}).createMachine({
  id: 'order',
  context: { amountCents: 1000, refunds: 0 },
  initial: 'new',
  states: {
    new: { on: { pay: 'paid' } },
    paid: { on: { refund: { target: 'refunded', actions: assign({ refunds: ({ context }) => context.refunds + 1 }) } } },
    refunded: {},
  },
});
const project = (s: PersistedSnapshot) => ({ status: String(s.value) });
const orderV1: ActorTypeDefinition = { type: 'order', machine: v1, version: 1, project };
const orderV2: ActorTypeDefinition = {
  type: 'order',
  machine: v2,
  version: 2,
  project,
  migrations: {
    1: (s) => {
      const { amt, ...rest } = s.context as { amt: number };
      return { ...s, value: s.value === 'charged' ? 'paid' : s.value, context: { ...rest, amountCents: amt, refunds: 0 } };
    },
  },
};

let database: Database;
beforeAll(async () => {
  database = await freshDatabase();
  const old = await testRuntime(database, { types: [orderV1], run: { timers: false, relay: false } });
  await old.host.send({ type: 'order', id: 'o1' }, { type: 'pay' });
  await old.host.send({ type: 'order', id: 'o2' }, { type: 'legacy' });
  await old.stop();
});
afterAll(async () => {
  await database.close();
});

describe('machine versions', () => {
  it('migrates a v1 snapshot on hydrate and stores it as v2 on the next transition', async () => {
    const rt = await testRuntime(database, { types: [orderV2], run: { timers: false, relay: false } });
    const view = await rt.host.get({ type: 'order', id: 'o1' });
    expect(view).toMatchObject({ value: 'paid', machineVersion: 1, context: { amountCents: 1000, refunds: 0 }, accepts: ['refund'] });
    const r = await rt.host.send({ type: 'order', id: 'o1' }, { type: 'refund' });
    expect(r).toMatchObject({ value: 'refunded', version: 2, context: { amountCents: 1000, refunds: 1 } });
    const { rows } = await database.pool.query(`SELECT machine_version FROM actors WHERE id = 'o1'`);
    expect(rows[0].machine_version).toBe(2);
    await rt.stop();
  });

  it('a snapshot in a removed state is a clear error, never a silent reset', async () => {
    const rt = await testRuntime(database, { types: [orderV2], run: { timers: false, relay: false } });
    await expect(rt.host.get({ type: 'order', id: 'o2' })).rejects.toMatchObject({ code: ErrorCode.InvalidSnapshot });
    const err = await rt.host.send({ type: 'order', id: 'o2' }, { type: 'pay' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.InvalidSnapshot });
    expect((err as Error).message).toContain('legacyState');
    const { rows } = await database.pool.query(`SELECT version, state_value FROM actors WHERE id = 'o2'`);
    expect(rows[0]).toEqual({ version: 1, state_value: 'legacyState' });
    await rt.stop();
  });

  it('a snapshot from a newer machine version, or with no migration path, is refused', async () => {
    const rt = await testRuntime(database, { types: [{ ...orderV2, migrations: {} }], run: { timers: false, relay: false } });
    await expect(rt.host.get({ type: 'order', id: 'o1' })).resolves.toBeTruthy(); // o1 is already v2
    await database.pool.query(`UPDATE actors SET machine_version = 1 WHERE id = 'o1'`);
    await expect(rt.host.get({ type: 'order', id: 'o1' })).rejects.toMatchObject({ code: ErrorCode.UnknownMachineVersion });
    await database.pool.query(`UPDATE actors SET machine_version = 3 WHERE id = 'o1'`);
    await expect(rt.host.get({ type: 'order', id: 'o1' })).rejects.toMatchObject({ code: ErrorCode.UnknownMachineVersion });
    await rt.stop();
  });

  it('an unknown actor type is a clear error from the registry', () => {
    expect(() => new Registry([orderV2]).get('invoice')).toThrow(/unknown actor type 'invoice'/);
    expect(() => new Registry([orderV2, orderV2])).toThrow(/registered twice/);
  });

  it('replace swaps the machine of a registered type of the same version only', () => {
    const r = new Registry([orderV1]);
    const injected: ActorTypeDefinition = { ...orderV1, machine: v1.provide({}) };
    expect(r.replace(injected).get('order')).toBe(injected);
    expect(() => r.replace(orderV2)).toThrow(/must keep version 1/);
    expect(() => r.replace({ ...orderV1, type: 'invoice' })).toThrow(/unknown actor type 'invoice'/);
  });
});
