import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { listDeadLetters, recordNatsDeadLetter, replayDeadLetter } from '../../../runtime/dead-letters.js';
import { natsNames, partitionedActorSubject } from '../../../runtime/nats/subjects.js';
import type { Runtime } from '../../../runtime/runtime.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testRuntime } from '../../helpers/runtime.js';
import { tallyType, type TallyContext } from './fixtures.js';

const nats = await natsForTests();
const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe.skipIf(!nats)('NATS transport: subjects, routing, dead letters', () => {
  const prefix = testPrefix();
  let database: Database;
  let runtime: Runtime;
  let nc: NatsConnection;
  let js: JetStreamClient;

  const entries = async (id: string): Promise<string[]> => {
    const v = await runtime.host.get({ type: 'tally', id }).catch(() => null);
    return v ? (v.context as unknown as TallyContext).entries : [];
  };

  beforeAll(async () => {
    database = await freshDatabase();
    runtime = await testRuntime(database, { types: [tallyType], env: natsEnv(nats!.url, prefix, { NATS_MAX_ATTEMPTS: '3' }) });
    await runtime.start();
    nc = await connect({ servers: nats!.url });
    js = jetstream(nc);
  });

  afterAll(async () => {
    await runtime?.stop();
    await nc?.close();
    await database?.close();
    await dropPrefix(nats!.url, prefix);
  });

  it('provisions every stream, and a second start changes nothing', async () => {
    const jsm = await jetstreamManager(nc);
    const names = natsNames(prefix);
    for (const s of [names.actorStream, names.ingressStream, names.eventsStream, names.dlqStream, names.serviceStream]) {
      const info = await jsm.streams.info(s);
      expect(info.config.storage).toBe('file');
      expect(info.config.duplicate_window).toBe(120_000 * 1_000_000);
    }
    const second = await testRuntime(database, { types: [tallyType], env: natsEnv(nats!.url, prefix), run: { relay: false, timers: false } });
    await second.start();
    await second.stop();
  });

  it('applies events published on the plain and on the partitioned actor subject, deduped by Nats-Msg-Id', async () => {
    await js.publish(`${prefix}.actor.tally.a1`, enc({ type: 'tally.add', seq: 1, source: 'ext' }), { msgID: 'ext-1' });
    // the two subject forms are two paths: a source keeps its order on one of them, so wait here
    await waitFor('the first entry', async () => (await entries('a1')).length >= 1);
    await js.publish(partitionedActorSubject(prefix, { type: 'tally', id: 'a1' }, 4), enc({ type: 'tally.add', seq: 2, source: 'ext' }), { msgID: 'ext-2' });
    // the same publisher id again, on the other subject: the actor's inbox drops it
    await js.publish(partitionedActorSubject(prefix, { type: 'tally', id: 'a1' }, 4), enc({ type: 'tally.add', seq: 1, source: 'ext' }), { msgID: 'ext-1' });
    await js.publish(`${prefix}.actor.tally.a1`, enc({ type: 'tally.add', seq: 3, source: 'ext' }), { msgID: 'ext-3' });
    await waitFor('three entries', async () => (await entries('a1')).length >= 3);
    expect(await entries('a1')).toEqual(['ext:1', 'ext:2', 'ext:3']);
  });

  it('carries actor-to-actor sends through the relay and JetStream', async () => {
    for (let seq = 0; seq < 20; seq++) await runtime.host.send({ type: 'tally', id: 'src' }, { type: 'tally.fanout', to: ['b1', 'b2', 'b3'], seq });
    for (const id of ['b1', 'b2', 'b3']) {
      await waitFor(`${id} has 20`, async () => (await entries(id)).length >= 20);
      expect(await entries(id)).toEqual(Array.from({ length: 20 }, (_, i) => `src:${i}`));
    }
    expect(runtime.nats?.deliver).toBeTypeOf('function');
  });

  it('routes a service event by correlation id (header or payload field); an unknown id is dead-lettered as unroutable', async () => {
    await runtime.host.send({ type: 'tally', id: 'w1' }, { type: 'tally.wait', correlationId: 'cmd-77' });
    const h = headers();
    h.set('Concord-Correlation-Id', 'cmd-77');
    await js.publish(`${prefix}svc.events.payments`, enc({ type: 'svc.reply', value: 'by-header' }), { headers: h, msgID: 'pay-1' });
    await js.publish(`${prefix}svc.events.payments`, enc({ type: 'svc.reply', value: 'by-field', commandId: 'cmd-77' }), { msgID: 'pay-2' });
    await js.publish(`${prefix}svc.events.payments`, enc({ type: 'svc.reply', value: 'lost', correlationId: 'nobody' }), { msgID: 'pay-3' });
    await waitFor('two replies', async () => (await entries('w1')).length >= 2);
    expect(await entries('w1')).toEqual(['reply:by-header', 'reply:by-field']);
    const dead = await waitFor('unroutable dead letter', async () => (await listDeadLetters(database.pool, { reason: 'unroutable' })).find((d) => d.messageId === 'pay-3'));
    expect(dead.error).toContain('nobody');

    // the actor starts waiting on it later: a replay routes it
    await runtime.host.send({ type: 'tally', id: 'w2' }, { type: 'tally.wait', correlationId: 'nobody' });
    await replayDeadLetter(database.pool, dead.id, runtime.config.partitions);
    await waitFor('replayed reply', async () => (await entries('w2')).includes('reply:lost'));
  });

  it('takes an event type from the subject when the payload has none, and leaves subjects other consumers own alone', async () => {
    await runtime.host.send({ type: 'tally', id: 'w3' }, { type: 'tally.wait', correlationId: 'cmd-88' });
    await js.publish(`${prefix}svc.events.OrderCreatedEvent`, enc({ orderId: 'o-1', eventId: 'e-1' }), { msgID: 'order-1' });
    await js.publish(`${prefix}svc.events.Pong`, enc({ commandId: 'cmd-88' }), { msgID: 'pong-1' });
    await waitFor('pong', async () => (await entries('w3')).includes('pong'));
    const dead = await listDeadLetters(database.pool, { includeReplayed: true });
    expect(dead.find((d) => d.messageId === 'order-1')).toBeUndefined();
  });

  it('applies a service event in the router itself; one its actor refuses is dead-lettered against the actor, with its type', async () => {
    await runtime.host.send({ type: 'tally', id: 'w4' }, { type: 'tally.wait', correlationId: 'cmd-99' });
    const before = (await (await jetstreamManager(nc)).streams.info(natsNames(prefix).actorStream)).state.messages;
    await js.publish(`${prefix}svc.events.Pong`, enc({ commandId: 'cmd-99' }), { msgID: 'pong-99a' });
    await waitFor('pong applied', async () => (await entries('w4')).includes('pong'));
    // applied where it was consumed: nothing was republished to the actor's partitioned subject
    expect((await (await jetstreamManager(nc)).streams.info(natsNames(prefix).actorStream)).state.messages).toBe(before);
    await runtime.host.send({ type: 'tally', id: 'w4' }, { type: 'tally.close' });
    await js.publish(`${prefix}svc.events.Pong`, enc({ commandId: 'cmd-99' }), { msgID: 'pong-99b' });
    const dead = await waitFor('rejected service event', async () => (await listDeadLetters(database.pool, { reason: 'rejected' })).find((d) => d.messageId === 'pong-99b'));
    expect(dead).toMatchObject({ actorType: 'tally', actorId: 'w4', payload: { commandId: 'cmd-99', type: 'Pong' } });
  });

  it('dead-letters an event the actor state does not accept as rejected, announces it on <prefix>.dlq.rejected, and goes on', async () => {
    await runtime.host.send({ type: 'tally', id: 'c1' }, { type: 'tally.close' });
    const subject = partitionedActorSubject(prefix, { type: 'tally', id: 'c1' }, 4);
    await js.publish(subject, enc({ type: 'tally.add', seq: 1, source: 'ext' }), { msgID: 'closed-1' });
    const dead = await waitFor('rejected dead letter', async () => (await listDeadLetters(database.pool, { reason: 'rejected' })).find((d) => d.messageId === 'closed-1'));
    expect(dead).toMatchObject({ origin: 'nats', actorType: 'tally', actorId: 'c1', attempts: 1 });
    const jsm = await jetstreamManager(nc);
    await waitFor('dlq announcement', async () => (await jsm.streams.info(natsNames(prefix).dlqStream)).state.messages >= 2);
    // a payload that is not an event is dead-lettered as invalid
    await js.publish(subject, new TextEncoder().encode('not json'), { msgID: 'junk-1' });
    await waitFor('invalid dead letter', async () => (await listDeadLetters(database.pool, { reason: 'invalid' })).find((d) => d.messageId === 'junk-1'));
    const health = await runtime.health();
    expect(health.nats).toMatchObject({ status: 'connected' });
    expect(health.deadLetters).toBeGreaterThanOrEqual(2);
    expect(health.partitions.owned.length).toBe(4);
  });

  it('records a consumed message as dead once while it is open (a crash between recording and term() redelivers it)', async () => {
    const d = { reason: 'failed', subject: `${prefix}.actor.p1.tally.x`, actorType: 'tally', actorId: 'x', messageId: 'once-1', payload: { type: 'tally.add' }, headers: {}, error: 'boom', attempts: 3 };
    expect(await recordNatsDeadLetter(database.pool, d)).toBe(true);
    expect(await recordNatsDeadLetter(database.pool, d)).toBe(false);
    const [row] = (await listDeadLetters(database.pool, { actor: { type: 'tally', id: 'x' } }));
    await replayDeadLetter(database.pool, row!.id, 4);
    // replayed and failing again: a new open dead letter
    expect(await recordNatsDeadLetter(database.pool, d)).toBe(true);
  });
});
