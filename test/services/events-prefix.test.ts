import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relationshipType } from '../../machines/relationship.js';
import { sagaType } from '../../machines/saga/index.js';
import { workflowType } from '../../machines/workflow/index.js';
import type { Database } from '../../runtime/db.js';
import { natsNames } from '../../runtime/nats/subjects.js';
import type { Runtime } from '../../runtime/runtime.js';
import type { Principal } from '../../services/common/principal.js';
import { createServices, type Services } from '../../services/index.js';
import { orderData } from '../../services/saga/order.js';
import { NatsServiceLink } from '../../simulator/links.js';
import { ServiceSimulator } from '../../simulator/services.js';
import { freshDatabase, waitFor } from '../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../helpers/nats.js';
import { testLog, testRuntime } from '../helpers/runtime.js';
import { order } from './saga/harness.js';

/**
 * Regression: the relationship and workflow machines published on a hard-coded
 * `concord.events.` subject, so under any other NATS_PREFIX their events fell outside the
 * events stream (and went out on core NATS, not durable). Every event Concord publishes, from
 * each kind of actor, must land in `<PREFIX>_EVENTS`.
 */
const nats = await natsForTests();

interface Seen {
  subject: string;
  body: Record<string, unknown>;
}

describe.skipIf(!nats)('events under a non-default NATS_PREFIX', () => {
  const prefix = testPrefix();
  const servicePrefix = `${prefix}svc`;
  const operator: Principal = { sub: 'op', role: 'operator', tenantId: null };
  let database: Database;
  let runtime: Runtime;
  let services: Services;
  let sim: ServiceSimulator;
  let nc: NatsConnection;
  let sub: Subscription;
  const seen: Seen[] = [];

  beforeAll(async () => {
    database = await freshDatabase();
    runtime = await testRuntime(database, {
      types: [relationshipType, workflowType, sagaType],
      env: { ...natsEnv(nats!.url, prefix), SAGA_SERVICE_PREFIX: servicePrefix },
    });
    services = createServices({ runtime, log: testLog, run: { events: false, housekeeping: false } });
    await runtime.start();
    await services.start();
    nc = await connect({ servers: nats!.url });
    // whatever prefix an event went out under, a core subscriber on `*.events.>` sees it
    sub = nc.subscribe('*.events.>');
    void (async () => {
      for await (const m of sub) {
        try {
          seen.push({ subject: m.subject, body: m.json<Record<string, unknown>>() });
        } catch {
          /* not JSON: not one of ours */
        }
      }
    })();
    await nc.flush();
    sim = new ServiceSimulator({ link: new NatsServiceLink(nc, { natsPrefix: prefix, servicePrefix, log: testLog }), servicePrefix, log: testLog, seed: 7 });
    await sim.start();
  });

  afterAll(async () => {
    await sim?.stop();
    sub?.unsubscribe();
    await services?.stop();
    await runtime?.stop();
    await nc?.close();
    await database?.close();
    if (nats) await dropPrefix(nats.url, prefix);
  });

  it('finds every event of a relationship, an integration workflow and an order saga in <PREFIX>_EVENTS', async () => {
    const relationshipId = randomUUID();
    await services.relationships.create({ principal: operator }, relationshipId, { vendorId: `v-${prefix}`, partnerId: `p-${prefix}`, relationshipType: 'RESELLER' });
    await services.relationships.transition({ principal: operator }, relationshipId, 'activate');
    await services.relationships.transition({ principal: operator }, relationshipId, 'terminate', 'done');

    const workflowId = randomUUID();
    const wf = await services.workflows.create({ principal: operator }, workflowId, {
      name: 'prefix check',
      workflowType: 'DATA_SYNC',
      steps: [{ stepNumber: 1, name: 'Only step' }],
    });
    await services.workflows.start({ principal: operator }, workflowId);
    await services.workflows.step({ principal: operator }, workflowId, wf.steps[0]!.id, 'execute');
    await services.workflows.step({ principal: operator }, workflowId, wf.steps[0]!.id, 'complete', { output: { ok: true } });

    const saga = await services.sagas.start('ORDER_FULFILLMENT', orderData(order()));
    await waitFor('the saga to complete', async () => (await services.sagas.context(saga.workflowId)).status === 'COMPLETED', 30_000);

    // Concord's own events (the services' answers travel on `<servicePrefix>.events.` too)
    const ours = (s: Seen) => !s.subject.startsWith(`${servicePrefix}.`) && (s.body.id === relationshipId || s.body.workflowId === workflowId || s.body.workflowId === saga.workflowId);
    const kind = (s: Seen) => s.subject.slice(s.subject.indexOf('.events.') + '.events.'.length);
    const expected = {
      relationship: ['relationship.created', 'relationship.activated', 'relationship.terminated'],
      workflow: ['workflow.created', 'workflow.started', 'workflow.step.ready', 'workflow.step.started', 'workflow.step.completed', 'workflow.completed'],
      saga: ['WorkflowStartedEvent', 'SagaStepCompletedEvent', 'WorkflowCompletedEvent'],
    };
    const published = await waitFor(
      'every event on NATS',
      () => {
        const mine = seen.filter(ours);
        const kinds = new Set(mine.map(kind));
        return Object.values(expected).flat().every((k) => kinds.has(k)) ? mine : null;
      },
      30_000,
    );

    // every one went out under the configured prefix ...
    expect(published.filter((s) => !s.subject.startsWith(`${prefix}.events.`)).map((s) => s.subject)).toEqual([]);
    // ... and is stored in the events stream
    const jsm = await jetstreamManager(nc);
    const stream = natsNames(prefix).eventsStream;
    const stored: Seen[] = [];
    const info = await jsm.streams.info(stream);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (m) stored.push({ subject: m.subject, body: m.json<Record<string, unknown>>() });
    }
    const key = (s: Seen) => `${s.subject} ${JSON.stringify(s.body)}`;
    const inStream = new Set(stored.map(key));
    expect(published.filter((s) => !inStream.has(key(s))).map((s) => s.subject)).toEqual([]);
  });
});
