import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workflowType } from '../../../machines/workflow/index.js';
import { freshDatabase } from '../../helpers/db.js';
import { dropPrefix, natsEnv, natsForTests, testPrefix } from '../../helpers/nats.js';
import { waitFor } from '../../helpers/db.js';
import { api, type Api } from '../events/support.js';

let nats: { url: string } | null;
let prefix: string;
let t: Api | undefined;
let nc: NatsConnection | undefined;

beforeAll(async () => {
  nats = await natsForTests();
  if (!nats) return;
  prefix = testPrefix();
  t = await api({ database: await freshDatabase(), types: [workflowType], env: natsEnv(nats.url, prefix) });
  nc = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  if (t) {
    await t.close();
    await t.database.close();
  }
  if (nats) await dropPrefix(nats.url, prefix);
});

describe('automated workflow steps over NATS', () => {
  it('publishes the step command; the service answers on svc.events with the correlation id and the step completes', async () => {
    if (!t || !nc) {
      expect(process.env.NATS_URL, 'NATS_URL is set but the suite did not connect').toBeUndefined();
      return;
    }
    const js = jetstream(nc);
    const commands: Array<{ correlationId: string; data: unknown }> = [];
    const sub = nc.subscribe(`${prefix}svc.keys.issue`);
    void (async () => {
      for await (const m of sub) {
        const cmd = m.json<{ correlationId: string; data: unknown }>();
        commands.push(cmd);
        await js.publish(`${prefix}svc.events.keys`, JSON.stringify({ type: 'workflow.step.reply', correlationId: cmd.correlationId, status: 'succeeded', output: { keyId: 'k-9' } }), {
          msgID: `reply-${cmd.correlationId}`,
        });
      }
    })();
    const op = t.token('operator');
    const wf = (
      await t.call('POST', '/workflows', {
        token: op,
        body: {
          name: 'Keys over NATS',
          workflowType: 'API_ACCESS_GRANT',
          steps: [
            { stepNumber: 1, name: 'Issue Credentials', configuration: { action: { type: 'publish', subject: `${prefix}svc.keys.issue`, data: { scopes: ['read'] } }, timeoutMs: 20_000 } },
            { stepNumber: 2, name: 'Notify Partner', dependencies: [1] },
          ],
        },
      })
    ).body;
    await t.call('POST', `/workflows/${wf.id}/start`, { token: op });
    const done = await waitFor('step 1 completed from the NATS reply', async () => {
      const w = (await t!.call('GET', `/workflows/${wf.id}`, { token: op })).body;
      return w.steps[0].status === 'COMPLETED' ? w : null;
    }, 30_000);
    sub.unsubscribe();
    expect(done.steps[0].output).toEqual({ keyId: 'k-9' });
    expect(done.steps[1].status).toBe('READY');
    expect(commands).toHaveLength(1);
    expect(commands[0]!.data).toEqual({ scopes: ['read'] });
  });
});
