import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool } from '../../runtime/db.js';
import { isDatabaseUnavailable } from '../../runtime/errors.js';

/**
 * A database host that takes the TCP connection and then says nothing (a half-dead server, a
 * firewall that swallows packets) must not hold a query until the OS gives up: the pool's
 * connect timeout fails it, as an outage the edge answers with a 503.
 */
describe('the pool against a server that never answers', () => {
  let silent: net.Server;
  const sockets = new Set<net.Socket>();
  let port = 0;

  beforeAll(async () => {
    silent = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    port = (silent.address() as AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => silent.close(r));
  });

  it('fails the query within the connect timeout, as a database outage', async () => {
    const pool = createPool(`postgres://nobody@127.0.0.1:${port}/none`, 2, 'concord-test', 300);
    const started = Date.now();
    const err = await pool.query('SELECT 1').then(
      () => null,
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    await pool.end().catch(() => undefined);
    expect(err).toBeInstanceOf(Error);
    expect(isDatabaseUnavailable(err)).toBe(true);
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(5_000);
  });
});
