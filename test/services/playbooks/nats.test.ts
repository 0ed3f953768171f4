import { headers as natsHeaders, connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { TRIGGER_CONSUMER, triggerStreamName } from '../../../services/playbooks/nats.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { countingServer, operator, playbookSystem, TERMINAL, type CountingServer, type PlaybookSystem } from './kit.js';

let nats: { url: string } | null;
let prefix: string;
let database: Database | undefined;
let server: CountingServer;
let sys: PlaybookSystem | undefined;
let nc: NatsConnection | undefined;

const start = () => playbookSystem(database!, { baseUrl: server.url, env: natsEnv(nats!.url, prefix) });

beforeAll(async () => {
  nats = await natsForTests();
  if (!nats) return;
  prefix = testPrefix();
  database = await freshDatabase(6);
  server = await countingServer();
  sys = await start();
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await sys?.close();
  await server?.close();
  await database?.close();
  if (nats) await dropPrefix(nats.url, prefix);
});

describe('the nats trigger over JetStream', () => {
  it('is durable: a message published while Concord is down starts the playbook once when it is back; a message id starts one execution, and one without an id starts one too', async () => {
    if (!sys || !nc) {
      expect(process.env.NATS_URL, 'NATS_URL is set but the suite did not connect').toBeUndefined();
      return;
    }
    const subject = `${prefix}partners.signup`;
    const pb = await sys.services.playbooks.create(
      { principal: operator },
      ['name: on-signup', 'inputs:', '  who: { type: string }', 'triggers:', `  - nats: { subject: "${subject}.*" }`, 'steps:', '  - id: s', '    evaluate: "inputs.who"'].join('\n'),
      'yaml',
    );
    await sys.services.playbookIntake.reload();
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(triggerStreamName(prefix))).config.subjects).toEqual([`${subject}.*`]);

    const js = jetstream(nc);
    const publish = (id: string | null, who: string) => {
      const h = natsHeaders();
      if (id) h.set('Nats-Msg-Id', id);
      return nc!.publish(`${subject}.eu`, JSON.stringify({ who }), { headers: h });
    };
    const executions = async () => (await sys!.services.playbooks.listExecutions(operator, { playbookId: pb.id, limit: 50 })).data;
    const settled = (n: number) =>
      waitFor(`${n} executions ended`, async () => {
        const list = await executions();
        return list.length >= n && list.every((e) => TERMINAL.includes(e.status)) ? list : null;
      }, 20_000);

    // running: a message starts one execution; the same message id again starts nothing
    publish('signup-1', 'ada');
    publish('signup-1', 'ada');
    await nc.flush();
    expect((await settled(1)).map((e) => e.triggerInfo)).toEqual([{ kind: 'nats', subject: `${subject}.eu`, messageId: 'signup-1' }]);

    // down: the messages wait in the stream
    await sys.close();
    sys = undefined;
    publish('signup-2', 'grace');
    publish('signup-2', 'grace'); // a producer's retry
    await js.publish(`${subject}.us`, JSON.stringify({ who: 'linus' }), { msgID: 'signup-3' });
    publish(null, 'nobody'); // no message id: its place in the stream is its id
    await nc.flush();
    expect((await jsm.consumers.info(triggerStreamName(prefix), TRIGGER_CONSUMER)).num_pending).toBeGreaterThanOrEqual(3);

    // back: each waiting message starts its execution once, and the stream is drained
    sys = await start();
    const list = await settled(4);
    await new Promise((r) => setTimeout(r, 500)); // nothing more comes
    const after = await executions();
    expect(after).toHaveLength(4);
    const ids = after.map((e) => (e.triggerInfo as { messageId: string }).messageId).sort();
    expect(ids.slice(0, 3)).toEqual(['signup-1', 'signup-2', 'signup-3']);
    expect(ids[3]).toMatch(/^stream:\d+@\d+$/);
    expect(list.every((e) => e.status === 'succeeded')).toBe(true);
    const outputs = await Promise.all(after.map(async (e) => (await sys!.services.playbooks.getExecution(operator, e.id)).steps[0]!.output));
    expect(outputs.sort()).toEqual(['ada', 'grace', 'linus', 'nobody']);
    await waitFor('the stream drained', async () => {
      const c = await jsm.consumers.info(triggerStreamName(prefix), TRIGGER_CONSUMER);
      return c.num_pending === 0 && c.num_ack_pending === 0 ? c : null;
    });
  });
});
