import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../logger.js';

export type NatsStatus = 'connected' | 'reconnecting' | 'closed';

/** A NATS connection that reconnects forever and reports its state; listeners hear reconnects. */
export class NatsLink {
  status: NatsStatus = 'connected';
  reconnects = 0;
  readonly #onReconnect = new Set<() => void>();

  private constructor(
    readonly nc: NatsConnection,
    private readonly log: Logger,
  ) {}

  static async open(url: string, log: Logger, name = 'concord'): Promise<NatsLink> {
    const nc = await connect({
      servers: url.split(','),
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      reconnectJitter: 100,
      pingInterval: 5_000,
      maxPingOut: 3,
      waitOnFirstConnect: true,
      // every request (each JetStream publish is one) would otherwise build an Error up front to
      // keep the caller's stack for a later timeout: measured at 11% of a relay's CPU
      noAsyncTraces: true,
    });
    const link = new NatsLink(nc, log);
    void link.#watch();
    void nc.closed().then(() => {
      link.status = 'closed';
    });
    return link;
  }

  /** Called after every reconnect: deliveries in flight when the link dropped may be lost. */
  onReconnect(fn: () => void): () => void {
    this.#onReconnect.add(fn);
    return () => this.#onReconnect.delete(fn);
  }

  async #watch(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.status = 'reconnecting';
        this.log.warn({ server: 'server' in s ? s.server : undefined }, 'nats disconnected');
      } else if (s.type === 'reconnect') {
        this.status = 'connected';
        this.reconnects++;
        this.log.info({ server: 'server' in s ? s.server : undefined }, 'nats reconnected');
        for (const fn of this.#onReconnect) fn();
      }
    }
  }

  /** Drains (flushes what is buffered); with the server away, gives up after `timeoutMs` and closes. */
  async close(timeoutMs = 5_000): Promise<void> {
    if (this.nc.isClosed()) return;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const r = await Promise.race([this.nc.drain().then(() => 'drained' as const, () => 'failed' as const), gaveUp]);
    clearTimeout(timer);
    if (r !== 'drained' && !this.nc.isClosed()) await this.nc.close();
  }
}
