import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

// The import arrows of the house (eslint.config.js): each forbidden import is linted as if it
// were written in a file of the importing side, and must be reported by the boundary rule.

const root = fileURLToPath(new URL('../..', import.meta.url));
const RULE = '@typescript-eslint/no-restricted-imports';

let eslint: ESLint;
beforeAll(() => {
  eslint = new ESLint({ cwd: root });
});

/** The boundary rule's messages for `code` written in `file` (a path from the repository root). */
async function boundaryErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${root}${file}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === RULE).map((m) => m.message);
}

const uses = (source: string) => `import { a } from '${source}';\nexport const b = a;\n`;

describe('import boundaries', () => {
  it.each([
    ['engine -> services', 'runtime/actor-host.ts', uses('../services/index.js')],
    ['engine (nested) -> services', 'runtime/nats/transport.ts', uses('../../services/saga/intake.js')],
    ['engine -> services, re-exported', 'runtime/runtime.ts', `export { a } from '../services/common/audit.js';\n`],
    ['engine -> http', 'runtime/runtime.ts', uses('../http/app.js')],
    ['engine -> app', 'runtime/db.ts', uses('../app/main.js')],
    ['engine -> a connector provider', 'runtime/effects.ts', uses('../connectors/shopify/index.js')],
    ['engine -> test', 'runtime/store.ts', uses('../test/helpers/db.js')],
    ['machines -> runtime', 'machines/relationship.ts', uses('../runtime/store.js')],
    ['machines -> runtime, type only', 'machines/relationship.ts', `import type { Store } from '../runtime/store.js';\nexport type S = Store;\n`],
    ['machines -> runtime/registry, value', 'machines/saga.ts', uses('../runtime/registry.js')],
    ['machines (nested) -> runtime', 'machines/kit/actor-type.ts', uses('../../runtime/registry.js')],
    ['machines -> services', 'machines/workflow.ts', uses('../services/saga/plan.js')],
    ['machines -> http', 'machines/workflow.ts', uses('../http/app.js')],
    ['machines -> connectors', 'machines/workflow.ts', uses('../connectors/kit/index.js')],
    ['machines -> node:fs', 'machines/saga.ts', uses('node:fs')],
    ['machines -> fs', 'machines/saga.ts', uses('fs')],
    ['machines -> pg', 'machines/saga.ts', uses('pg')],
    ['machines -> kysely', 'machines/saga.ts', uses('kysely')],
    ['machines -> @nats-io/jetstream', 'machines/saga.ts', uses('@nats-io/jetstream')],
    ['services -> http', 'services/coordination/relationships.ts', uses('../../http/idempotency.js')],
    ['services (root) -> http', 'services/index.ts', uses('../http/app.js')],
    ['services -> app', 'services/saga/service.ts', uses('../../app/main.js')],
    ['connectors -> runtime', 'connectors/shopify/client.ts', uses('../../runtime/runtime.js')],
    ['connectors/kit -> runtime', 'connectors/kit/errors.ts', uses('../../runtime/errors.js')],
    ['connectors -> services', 'connectors/shopify/client.ts', uses('../../services/index.js')],
    ['connectors -> http', 'connectors/shopify/webhooks.ts', uses('../../http/app.js')],
    ['http -> app', 'http/routes/relationships.ts', uses('../../app/main.js')],
  ])('fails on %s', async (_name, file, code) => {
    expect(await boundaryErrors(file, code)).not.toEqual([]);
  });

  it.each([
    ['services -> runtime', 'services/coordination/relationships.ts', uses('../../runtime/actor-host.js')],
    ['services -> machines', 'services/saga/service.ts', uses('../../machines/saga.js')],
    ['services -> services', 'services/saga/service.ts', uses('../common/errors.js')],
    ['http -> services', 'http/routes/relationships.ts', uses('../../services/coordination/relationships.js')],
    ['http (root) -> services', 'http/app.ts', uses('../services/index.js')],
    ['http -> runtime', 'http/app.ts', uses('../runtime/logger.js')],
    ['http -> http', 'http/app.ts', uses('./routes/actors.js')],
    ['runtime -> machines', 'runtime/actor-host.ts', uses('../machines/effects.js')],
    ['runtime (nested) -> runtime', 'runtime/nats/transport.ts', uses('../registry.js')],
    ['runtime -> connectors/kit', 'runtime/effects.ts', uses('../connectors/kit/index.js')],
    ['runtime -> npm', 'runtime/store.ts', uses('pg')],
    ['connector provider -> connectors/kit', 'connectors/shopify/client.ts', uses('../kit/index.js')],
    ['connectors -> machines', 'connectors/kit/contract.ts', uses('../../machines/effects.js')],
    ['machines -> machines', 'machines/saga.ts', uses('./effects.js')],
    ['machines (nested) -> machines', 'machines/kit/actor-type.ts', uses('../effects.js')],
    ['machines -> xstate', 'machines/saga.ts', uses('xstate')],
    ['machines -> xstate/graph', 'machines/saga.ts', uses('xstate/graph')],
    ['app -> anything', 'app/main.ts', uses('../http/app.js')],
    ['test -> anything', 'test/http/x.test.ts', uses('../../app/main.js')],
    ['bench -> anything', 'bench/http.ts', uses('../services/index.js')],
    ['simulator -> anything', 'simulator/demo.ts', uses('../http/app.js')],
  ])('passes on %s', async (_name, file, code) => {
    expect(await boundaryErrors(file, code)).toEqual([]);
  });
});

describe('thin routes', () => {
  it.each([
    ['the pool', `export const f = (s: { runtime: { database: { pool: { query(q: string): void } } } }) => s.runtime.database.pool.query('SELECT 1');\n`],
    ['the database', `export const f = (s: { runtime: { database: unknown } }) => s.runtime.database;\n`],
  ])('a route that reaches %s fails the lint', async (_what, code) => {
    const [result] = await eslint.lintText(code, { filePath: `${root}http/routes/x.ts` });
    expect((result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-syntax').length).toBeGreaterThan(0);
  });

  it('a route that calls a service passes', async () => {
    const [result] = await eslint.lintText(`export const f = (s: { relationships: { get(id: string): void } }) => s.relationships.get('x');\n`, { filePath: `${root}http/routes/x.ts` });
    expect(result?.messages ?? []).toEqual([]);
  });
});
