/**
 * An open-loop HTTP load generator: requests leave on an even schedule (`rate` per second, one
 * every 1/rate s, not a burst at the top of each second) over a fixed pool of keep-alive
 * connections, and each latency is measured from the moment the request was *due*, not from the
 * moment a free connection took it. A server that stalls is charged for every request that
 * waited behind the stall (no coordinated omission), which a closed loop of N connections hides:
 * there, latency is only N / throughput by Little's law.
 */
import http from 'node:http';

export interface OpenLoopRequest {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  body?: string;
  /** Added to `OpenLoopOptions.headers` for this request (a signature, an id). */
  headers?: Record<string, string>;
}

export interface OpenLoopOptions {
  port: number;
  headers: Record<string, string>;
  connections: number;
  rate: number;
  seconds: number;
  next: () => OpenLoopRequest;
  /**
   * Keep-alive connections to use (and leave open) instead of a fresh pool: a warm-up's, so the
   * measured run does not start by opening them (which a server that has been up a while never sees).
   */
  agent?: http.Agent;
}

/** A keep-alive pool for `openLoop`'s `agent` (the caller destroys it). */
export function keepAlivePool(connections: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
}

export interface OpenLoopResult {
  rate: number;
  sent: number;
  /** completed requests per second over the run */
  achieved: number;
  non2xx: number;
  errors: number;
  /** milliseconds from each request's due time to its last response byte, sorted */
  latencies: number[];
  /** how late, at worst, the generator itself was in sending a request (ms): a sanity check */
  maxSendLagMs: number;
}

export async function openLoop(opts: OpenLoopOptions): Promise<OpenLoopResult> {
  const agent = opts.agent ?? keepAlivePool(opts.connections);
  const total = Math.round(opts.rate * opts.seconds);
  const interval = 1_000 / opts.rate;
  const latencies: number[] = [];
  let non2xx = 0;
  let errors = 0;
  let sent = 0;
  let done = 0;
  let maxSendLagMs = 0;
  const start = performance.now();

  const fire = (due: number) => {
    const r = opts.next();
    const base = r.headers ? { ...opts.headers, ...r.headers } : opts.headers;
    const headers = r.body === undefined ? base : { ...base, 'content-length': String(Buffer.byteLength(r.body)) };
    const req = http.request({ agent, host: '127.0.0.1', port: opts.port, method: r.method, path: r.path, headers }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => {
        latencies.push(performance.now() - due);
        if (res.statusCode === undefined || res.statusCode >= 300) non2xx++;
        done++;
      });
    });
    req.on('error', () => {
      errors++;
      done++;
    });
    req.end(r.body);
  };

  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const due = start + sent * interval;
        maxSendLagMs = Math.max(maxSendLagMs, now - due);
        sent++;
        fire(due);
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
      else resolve();
    };
    tick();
  });
  while (done < sent) await new Promise((r) => setTimeout(r, 5));
  const elapsed = (performance.now() - start) / 1_000;
  if (!opts.agent) agent.destroy();
  latencies.sort((a, b) => a - b);
  return { rate: opts.rate, sent, achieved: done / elapsed, non2xx, errors, latencies, maxSendLagMs };
}
