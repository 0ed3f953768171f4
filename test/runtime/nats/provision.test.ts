import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { isConcordError } from '../../../runtime/errors.js';
import { provisionStreams, subjectsOverlap } from '../../../runtime/nats/provision.js';
import { natsNames } from '../../../runtime/nats/subjects.js';
import { freshDatabase } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { testConfig, testLog, testRuntime } from '../../helpers/runtime.js';
import { tallyType } from './fixtures.js';

const nats = await natsForTests();

describe('subjectsOverlap', () => {
  it('says whether two patterns can match one subject', () => {
    expect(subjectsOverlap('svc.>', 'svc.>')).toBe(true);
    expect(subjectsOverlap('svc.>', 'svc.orders.created')).toBe(true);
    expect(subjectsOverlap('svc.*.created', 'svc.orders.*')).toBe(true);
    expect(subjectsOverlap('svc.>', 'svc')).toBe(false);
    expect(subjectsOverlap('a.actor.*.*', 'b.actor.*.*')).toBe(false);
    expect(subjectsOverlap('a.actor.*.*', 'a.actor.*.*.*')).toBe(false);
  });
});

/**
 * Two deployments on one NATS with different prefixes but the same service subjects: the second
 * cannot make its service stream. It says which stream holds the subjects and what to set,
 * as a typed configuration error, rather than NATS's bare "subjects overlap".
 */
describe.skipIf(!nats)('NATS: a stream whose subjects another deployment holds', () => {
  let database: Database;
  const prefixes = [testPrefix(), testPrefix()];
  beforeAll(async () => {
    database = await freshDatabase();
  });
  afterAll(async () => {
    await database?.close();
    for (const p of prefixes) await dropPrefix(nats!.url, p);
  });

  it('fails the start with INVALID_CONFIG naming the other stream', async () => {
    const shared = `${prefixes[0]}svc`;
    // the first deployment's streams, as its start makes them
    const nc = await connect({ servers: nats!.url });
    try {
      await provisionStreams(await jetstreamManager(nc), natsNames(prefixes[0]!), testConfig(natsEnv(nats!.url, prefixes[0]!)).nats, testLog);
    } finally {
      await nc.close();
    }
    const env = { ...natsEnv(nats!.url, prefixes[1]!), NATS_SERVICE_SUBJECTS: `${shared}.>`, NATS_SERVICE_EVENTS: `${shared}.events.>`, NATS_SERVICE_ROUTER_SKIP: `${shared}.events.OrderCreatedEvent`, SAGA_SERVICE_PREFIX: shared };
    const second = await testRuntime(database, { types: [tallyType], env });
    const err = await second.start().then(
      () => null,
      (e: unknown) => e,
    );
    await second.stop().catch(() => undefined);
    expect(isConcordError(err) && err.code).toBe('INVALID_CONFIG');
    expect((err as Error).message).toContain(`${prefixes[0]!.toUpperCase()}_SERVICES (${shared}.>)`);
    expect((err as Error).message).toContain('SAGA_SERVICE_PREFIX');
  }, 30_000);
});
