import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { createLogger } from '../runtime/logger.js';
import { startEmbeddedPostgres } from '../runtime/embedded-postgres.js';
import os from 'node:os';
import path from 'node:path';

export const benchLog = createLogger(process.env.LOG_LEVEL ?? 'warn');

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

export function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

/** A fresh database for a benchmark: on DATABASE_URL's server, or an embedded one. */
export async function benchDatabase(name: string): Promise<{ url: string; stop: () => Promise<void> }> {
  let admin = process.env.DATABASE_URL;
  let stopEmbedded = async () => undefined as void;
  if (!admin) {
    const server = await startEmbeddedPostgres({ dataDir: path.join(os.tmpdir(), 'concord-bench-data'), port: 0, log: benchLog });
    admin = server.url;
    stopEmbedded = server.stop;
  }
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return { url: u.toString(), stop: stopEmbedded };
}

/** Deletes every JetStream stream a benchmark run made under `prefix` (they would pile up on the server). */
export async function dropNatsStreams(url: string, prefix: string): Promise<void> {
  const nc = await connect({ servers: url, noAsyncTraces: true });
  try {
    const jsm = await jetstreamManager(nc);
    const up = `${prefix.toUpperCase()}_`;
    const names: string[] = [];
    for await (const name of jsm.streams.names()) if (name.startsWith(up)) names.push(name);
    for (const name of names) await jsm.streams.delete(name).catch(() => undefined);
  } finally {
    await nc.close();
  }
}
