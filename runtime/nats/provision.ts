import { JetStreamApiError, RetentionPolicy, StorageType, DiscardPolicy, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { NatsConfig } from '../config.js';
import type { Logger } from '../logger.js';
import type { NatsNames } from './subjects.js';

const nanos = (ms: number) => ms * 1_000_000;

/** The streams Concord owns, from its configuration. */
export function streamConfigs(names: NatsNames, c: NatsConfig): Array<Partial<StreamConfig> & { name: string; subjects: string[] }> {
  const common = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: c.replicas,
    max_age: nanos(c.maxAgeMs),
    duplicate_window: nanos(c.duplicateWindowMs),
  };
  return [
    { ...common, name: names.actorStream, subjects: [names.actorSubjects], description: 'Concord: events to actors, by partition' },
    { ...common, name: names.ingressStream, subjects: [names.ingressSubjects], description: 'Concord: events to actors from outside services' },
    { ...common, name: names.eventsStream, subjects: [names.eventsSubjects], description: 'Concord: events Concord publishes' },
    { ...common, name: names.dlqStream, subjects: [names.dlqSubjects], description: 'Concord: dead letters, one message each' },
    { ...common, name: names.serviceStream, subjects: [c.serviceSubjects], description: 'Concord: service commands and service events' },
  ];
}

/** Creates every stream, or updates it to the configured limits; safe to run on every start. */
export async function provisionStreams(jsm: JetStreamManager, names: NatsNames, c: NatsConfig, log: Logger): Promise<void> {
  for (const cfg of streamConfigs(names, c)) {
    try {
      const info = await jsm.streams.info(cfg.name);
      const cur = info.config;
      const same =
        cur.subjects.join(',') === cfg.subjects.join(',') &&
        cur.num_replicas === cfg.num_replicas &&
        cur.max_age === cfg.max_age &&
        cur.duplicate_window === cfg.duplicate_window;
      if (!same) {
        await jsm.streams.update(cfg.name, { ...cur, ...cfg });
        log.info({ stream: cfg.name }, 'nats stream updated');
      }
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
      try {
        await jsm.streams.add(cfg);
        log.info({ stream: cfg.name, subjects: cfg.subjects }, 'nats stream created');
      } catch (addErr) {
        // another process created it a moment earlier: fine if it now exists
        await jsm.streams.info(cfg.name).catch(() => {
          throw addErr;
        });
      }
    }
  }
}
