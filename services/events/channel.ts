import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, JetStreamApiError, RetentionPolicy, StorageType, DiscardPolicy } from '@nats-io/jetstream';
import type { InProcessBus } from '../../runtime/bus.js';
import type { NatsConfig } from '../../runtime/config.js';
import { encodeToken } from '../../runtime/effects.js';
import type { Logger } from '../../runtime/logger.js';
import type { DeliverPublisher } from './worker.js';

/** `<prefix>.deliver.<targetIntegrationId>`: where a target integration's events are published. */
export const deliverSubject = (prefix: string, target: string): string => `${prefix}.deliver.${encodeToken(target)}`;

/** The stream that keeps `<prefix>.deliver.>` (JetStream dedupes on the webhook-id). */
export const deliverStreamName = (prefix: string): string => `${prefix.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}_DELIVER`;

const nanos = (ms: number) => ms * 1_000_000;

/** Creates (or updates) the deliver stream and returns a publisher that waits for the ack. */
export async function natsDeliverPublisher(nc: NatsConnection, c: NatsConfig, log: Logger): Promise<DeliverPublisher> {
  const jsm = await jetstreamManager(nc, { timeout: c.publishTimeoutMs });
  const name = deliverStreamName(c.prefix);
  const cfg = {
    name,
    subjects: [`${c.prefix}.deliver.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: c.replicas,
    max_age: nanos(c.maxAgeMs),
    duplicate_window: nanos(c.duplicateWindowMs),
    description: 'Concord: cross-integration events, one subject per target integration',
  };
  try {
    const info = await jsm.streams.info(name);
    await jsm.streams.update(name, { ...info.config, ...cfg });
  } catch (err) {
    if (!(err instanceof JetStreamApiError)) throw err;
    await jsm.streams.add(cfg);
    log.info({ stream: name }, 'nats deliver stream created');
  }
  const js = jetstream(nc, { timeout: c.publishTimeoutMs });
  return async (target, body, messageId, headers) => {
    const h = natsHeaders();
    for (const [k, v] of Object.entries(headers)) h.set(k, v);
    await js.publish(deliverSubject(c.prefix, target), body, { msgID: messageId, headers: h });
  };
}

/** The embedded transport: in-process subscribers of `concord.deliver.<target>`. */
export function busDeliverPublisher(bus: InProcessBus, prefix = 'concord'): DeliverPublisher {
  return (target, body, messageId, headers) => bus.publish({ subject: deliverSubject(prefix, target), data: JSON.parse(body), headers, messageId });
}
