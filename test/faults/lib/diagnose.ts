import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { natsNames } from '../../../runtime/nats/subjects.js';
import type { Operation } from './history.js';

interface Seen {
  seq: number;
  subject: string;
  msgId: string | undefined;
  concordId: string | undefined;
}

/** Every message of a stream, read with an ordered consumer (a few thousand at most here). */
async function readStream(nc: NatsConnection, stream: string): Promise<Seen[]> {
  const js = jetstream(nc, { timeout: 5_000 });
  const consumer = await js.consumers.get(stream);
  const out: Seen[] = [];
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 1_000, expires: 2_000 });
    let got = 0;
    let pending = 0;
    for await (const m of batch) {
      got++;
      pending = m.info.pending;
      out.push({ seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id') || undefined, concordId: m.headers?.get('Concord-Message-Id') || undefined });
    }
    if (got === 0 || pending === 0) return out;
  }
}

/**
 * Where the lost operations of a fault run went (and, lost or stuck, the streams' and consumers' states): whether each is in the ingress stream (the
 * publisher's own id), and whether its forward reached the actor stream; with both streams' and
 * the consumers' states. Printed when a run loses something, so a red CI run says at which hop.
 */
export async function diagnoseLoss(nc: NatsConnection, prefix: string, lost: Operation[]): Promise<string> {
  const names = natsNames(prefix);
  const jsm = await jetstreamManager(nc, { timeout: 5_000 });
  const lines: string[] = [];
  for (const s of [names.ingressStream, names.actorStream, names.serviceStream]) {
    const info = await jsm.streams.info(s).catch((err: Error) => err);
    if (info instanceof Error) lines.push(`${s}: ${info.message}`);
    else lines.push(`${s}: seq ${info.state.first_seq}..${info.state.last_seq}, ${info.state.messages} messages, leader ${info.cluster?.leader}, replicas ${JSON.stringify(info.cluster?.replicas?.map((r) => ({ name: r.name, current: r.current, lag: r.lag })))}`);
    for await (const ci of jsm.consumers.list(s)) {
      lines.push(`  consumer ${ci.name}: delivered ${ci.delivered.stream_seq}, ack floor ${ci.ack_floor.stream_seq}, pending ${ci.num_pending}, ack pending ${ci.num_ack_pending}, redelivered ${ci.num_redelivered}`);
    }
  }
  const ingress = await readStream(nc, names.ingressStream).catch(() => [] as Seen[]);
  const actors = await readStream(nc, names.actorStream).catch(() => [] as Seen[]);
  const ingressById = new Map(ingress.map((m) => [m.msgId, m]));
  const forwards = new Map<string, Seen[]>();
  for (const m of actors) if (m.concordId) forwards.set(m.concordId, [...(forwards.get(m.concordId) ?? []), m]);
  const byForwardId = new Map(actors.map((m) => [m.msgId, m]));
  lines.push(`read ${ingress.length} ingress and ${actors.length} actor messages`);
  for (const op of lost.slice(0, 12)) {
    const id = `${prefix}-${op.source}-${op.seq}`;
    const inIngress = ingressById.get(id);
    const fwd = forwards.get(id) ?? [];
    const clash = inIngress ? byForwardId.get(`${names.ingressStream}:${inIngress.seq}`) : undefined;
    lines.push(
      `  ${op.id} -> ${op.target}: ingress ${inIngress ? `seq ${inIngress.seq}` : 'absent'}; forwarded ${fwd.map((f) => `seq ${f.seq} ${f.subject} (${f.msgId})`).join(', ') || 'never'}` +
        (clash && clash.concordId !== id ? `; the actor stream holds ${clash.msgId} for another message (${clash.concordId}, seq ${clash.seq})` : ''),
    );
  }
  return lines.join('\n');
}
