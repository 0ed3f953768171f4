import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AckPublisher, NoRespondersError, PublishTimeoutError } from '../../../runtime/nats/publisher.js';
import { natsForTests, testPrefix } from '../../helpers/nats.js';

const nats = await natsForTests();
const enc = new TextEncoder();

describe.skipIf(!nats)('AckPublisher (JetStream publishes matched to their acks by reply token)', () => {
  const prefix = testPrefix();
  const stream = `${prefix.toUpperCase()}_PUBTEST`;
  let nc: NatsConnection;
  let publisher: AckPublisher;

  const withId = (id: string) => {
    const h = headers();
    h.set('Nats-Msg-Id', id);
    return h;
  };

  beforeAll(async () => {
    nc = await connect({ servers: nats!.url, noAsyncTraces: true });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: stream, subjects: [`${prefix}.pub.>`], duplicate_window: 60_000_000_000 });
    publisher = new AckPublisher(nc, 300);
  });
  afterAll(async () => {
    publisher?.close();
    await (await jetstreamManager(nc)).streams.delete(stream).catch(() => undefined);
    await nc?.close();
  });

  it('resolves each of many pipelined publishes with its own ack, and flags a second copy of an id as duplicate', async () => {
    const acks = await Promise.all(Array.from({ length: 500 }, (_, i) => publisher.publish(`${prefix}.pub.a`, enc.encode(`{"i":${i}}`), withId(`m-${i}`))));
    expect(acks.map((a) => a.seq)).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    expect(acks.every((a) => a.stream === stream && !a.duplicate)).toBe(true);
    const again = await publisher.publish(`${prefix}.pub.a`, enc.encode('{}'), withId('m-7'));
    expect(again).toMatchObject({ stream, seq: 8, duplicate: true });
    expect(publisher.pending).toBe(0);
  });

  it('fails with the server’s answer when JetStream refuses the message', async () => {
    const h = withId('wrong-seq');
    h.set('Nats-Expected-Last-Sequence', '1');
    const err = await publisher.publish(`${prefix}.pub.b`, enc.encode('{}'), h).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(JetStreamApiError);
    expect((err as JetStreamApiError).message).toMatch(/sequence/i);
  });

  it('fails with no-responders when no stream captures the subject', async () => {
    const err = await publisher.publish(`${prefix}.nostream.x`, enc.encode('{}'), withId('n-1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoRespondersError);
    expect((err as NoRespondersError).isNoResponders()).toBe(true);
  });

  it('times out a publish nobody acknowledges, and ignores an ack that comes after that', async () => {
    // a plain subscriber takes the message and never answers its reply subject
    let reply = '';
    const sub = nc.subscribe(`${prefix}.silent`, {
      callback: (_e, m) => {
        reply = m.reply ?? '';
      },
    });
    const t0 = performance.now();
    const err = await publisher.publish(`${prefix}.silent`, enc.encode('{}'), withId('s-1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishTimeoutError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(performance.now() - t0).toBeLessThan(1_500);
    expect(publisher.pending).toBe(0);
    nc.publish(reply, enc.encode(JSON.stringify({ stream, seq: 99 })));
    await nc.flush();
    const ok = await publisher.publish(`${prefix}.pub.c`, enc.encode('{}'), withId('after-late'));
    expect(ok.stream).toBe(stream);
    sub.unsubscribe();
  });
});
