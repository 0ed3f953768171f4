/**
 * `npm run faults`: the fault scenarios at full size, one after the other, then a table
 * (scenario, operations, faults injected, lost, duplicated, reordered, stuck). CI runs the same
 * scenarios smaller (test/faults/*.test.ts).
 *
 *   npm run faults                       # both scenarios, full size (about 10 minutes)
 *   npm run faults -- --only nats        # or: postgres
 *   npm run faults -- --scale 0.25       # shorter runs, fewer sagas
 *
 * Everything runs on servers of its own: three nats-server processes and a PostgreSQL made with
 * initdb (the machine's shared servers are never touched). Exit code 1 when any count is not 0.
 */
import { parseArgs } from 'node:util';
import { createPool } from '../../runtime/db.js';
import { createLogger } from '../../runtime/logger.js';
import { describeVerdict } from './lib/history.js';
import { natsClusterScenario } from './lib/nats-scenario.js';
import { postgresRestartScenario } from './lib/pg-scenario.js';
import { OwnPostgres } from './lib/postgres.js';
import type { ScenarioRow } from './lib/workload.js';

const { values } = parseArgs({ options: { only: { type: 'string' }, scale: { type: 'string', default: '1' } } });
const scale = Number(values.scale);
if (!(scale > 0)) throw new Error('--scale must be a positive number');
const log = createLogger(process.env.FAULTS_LOG_LEVEL ?? 'silent', process.stderr);
const progress = (line: string) => process.stderr.write(`${line}\n`);
const rows: ScenarioRow[] = [];
let failed = false;

if (!values.only || values.only === 'nats') {
  const pg = await OwnPostgres.start();
  const url = await pg.createDatabase('concord_faults_nats');
  const pool = createPool(url, 24);
  try {
    const { row, verdict } = await natsClusterScenario({
      database: { pool, url, close: async () => pool.end() },
      log,
      durationMs: Math.round(120_000 * scale),
      faultEveryMs: 5_000,
      downMs: 5_000,
      sources: 16,
      perSourcePerSecond: 25,
      actors: 500,
      sagas: Math.round(600 * scale),
      drainTimeoutMs: 300_000,
      progress,
    });
    rows.push(row);
    failed ||= !verdict.ok;
    progress(describeVerdict(verdict));
  } finally {
    await pool.end();
    await pg.dispose();
  }
}

if (!values.only || values.only === 'postgres') {
  const { row, verdict, http } = await postgresRestartScenario({
    log,
    sagas: Math.round(2_000 * scale),
    startOverMs: Math.round(120_000 * scale),
    restartEveryMs: [5_000, 20_000],
    downMs: [0, 2_000],
    minFaultsMs: Math.round(120_000 * scale),
    drainTimeoutMs: 300_000,
    hangMs: 10_000,
    progress,
  });
  rows.push(row);
  failed ||= !verdict.ok || http.bad > 0 || http.hangs > 0;
  progress(describeVerdict(verdict));
}

const head = ['scenario', 'operations', 'faults injected', 'lost', 'duplicated', 'reordered', 'stuck'];
const out = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
for (const r of rows) out.push(`| ${[r.scenario, r.operations, r.faults, r.lost, r.duplicated, r.reordered, r.stuck].join(' | ')} |`);
process.stdout.write(`\n${out.join('\n')}\n\n${rows.map((r) => `- ${r.scenario}: ${r.notes}`).join('\n')}\n`);
process.exit(failed ? 1 : 0);
