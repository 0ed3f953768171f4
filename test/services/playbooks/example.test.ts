import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../../runtime/db.js';
import { freshDatabase, waitFor } from '../../helpers/db.js';
import { operator, playbookSystem, TERMINAL, type PlaybookSystem } from './kit.js';

const EXAMPLE = readFileSync(new URL('../../fixtures/playbooks/partner-health-digest.yaml', import.meta.url), 'utf8');

let database: Database;
let sys: PlaybookSystem;
beforeAll(async () => {
  database = await freshDatabase(8);
  sys = await playbookSystem(database, { baseUrl: 'http://127.0.0.1:1', realRunners: true });
});
afterAll(async () => {
  await sys?.close();
  await database?.close();
});

describe("the issue's example with the real step runners", () => {
  it('runs: the query finds no unhealthy integration, the message renders, notify is skipped by its if, finally runs', async () => {
    const pb = await sys.services.playbooks.create({ principal: operator }, EXAMPLE, 'yaml');
    const started = await sys.services.playbooks.execute({ principal: operator }, pb.id, {});
    const e = await waitFor('the example to end', async () => {
      const x = await sys.services.playbooks.getExecution(operator, started.id);
      return TERMINAL.includes(x.status) ? x : null;
    });
    const by = Object.fromEntries(e.steps.map((s) => [s.id, s]));
    expect(e.status).toBe('succeeded');
    expect(by.unhealthy).toMatchObject({ status: 'succeeded', type: 'query' });
    expect(by.any).toMatchObject({ status: 'succeeded', output: false });
    expect(by.message).toMatchObject({ status: 'succeeded' });
    expect(JSON.stringify(by.message!.output)).toContain('0 integrations need attention in #partners');
    expect(by.notify).toMatchObject({ status: 'skipped', skipReason: 'condition' });
    expect(by.audit).toMatchObject({ status: 'succeeded', output: true, phase: 'finally' });
    // three transitions: the create (the query's call), the query's answer (`any` inline, the
    // template's call), the template's answer (notify's if, then audit, inline)
    expect(e.version).toBe(3);
  });
});
