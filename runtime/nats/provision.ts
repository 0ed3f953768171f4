import { JetStreamApiError, RetentionPolicy, StorageType, DiscardPolicy, type JetStreamManager, type StreamConfig } from '@nats-io/jetstream';
import type { NatsConfig } from '../config.js';
import { ConcordError, ErrorCode } from '../errors.js';
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
        const exists = await jsm.streams.info(cfg.name).then(
          () => true,
          () => false,
        );
        if (!exists) throw await explainAddFailure(jsm, cfg, addErr);
      }
    }
  }
}

/** Whether two subject patterns can match one subject (`*` one token, `>` the rest). */
export function subjectsOverlap(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; ; i++) {
    if (i === x.length || i === y.length) return x.length === y.length;
    if (x[i] === '>' || y[i] === '>') return true;
    if (x[i] !== '*' && y[i] !== '*' && x[i] !== y[i]) return false;
  }
}

/**
 * A stream that cannot be made because another stream on the server holds some of its
 * subjects (another Concord deployment with the same service subjects, typically): say which
 * and what to set, rather than NATS's bare "subjects overlap with an existing stream".
 */
async function explainAddFailure(jsm: JetStreamManager, cfg: { name: string; subjects: string[] }, err: unknown): Promise<unknown> {
  if (!(err instanceof JetStreamApiError) || !/overlap/i.test(err.message)) return err;
  const others: string[] = [];
  for await (const s of jsm.streams.list()) {
    const clash = s.config.subjects?.filter((theirs) => cfg.subjects.some((ours) => subjectsOverlap(ours, theirs))) ?? [];
    if (clash.length > 0 && s.config.name !== cfg.name) others.push(`${s.config.name} (${clash.join(', ')})`);
  }
  return new ConcordError(
    ErrorCode.InvalidConfig,
    `NATS stream ${cfg.name} cannot take subjects ${cfg.subjects.join(', ')}: ${others.join('; ') || 'another stream'} already holds them on this server. ` +
      'Each Concord deployment on one NATS needs its own NATS_PREFIX and its own service subjects (SAGA_SERVICE_PREFIX, or NATS_SERVICE_SUBJECTS).',
    { stream: cfg.name, subjects: cfg.subjects, overlapping: others },
    { cause: err },
  );
}
