/**
 * What the contract suite (../contract.test.ts) needs of a provider: each adapter plays one
 * provider's part against its local fake (the browser steps included), and the suite asserts
 * the same outcomes of every provider.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ConnectorWebhooks, WebhookRequest } from '../../../connectors/kit/contract.js';

/** Credentials as the suite passes them around (each adapter knows its own shape). */
export type Creds = Record<string, unknown>;

export interface ProviderUnderTest {
  readonly name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /**
   * The OAuth authorization-code round trip, the browser played by the test: the authorize URL,
   * the fake's 302 to our callback, the callback checked, the code exchanged. Absent for a
   * provider configured without a browser step (then `credentials()` gives them).
   */
  oauth?: {
    /** Answers the checked callback and the exchanged grant. `tamper` alters the callback query before the check. */
    connect(o?: { tamper?: (q: URLSearchParams) => void }): Promise<{ callbackOk: boolean; reason?: string; creds?: Creds }>;
    expireAccess(): void;
    refresh(creds: Creds): Promise<Creds>;
    /** `single-use`: the old refresh token dies at once (ML); `grace`: it lives until the replacement is first used (Shopify since 2026-08-28). */
    refreshKind: 'single-use' | 'grace';
  };
  credentials(): Promise<Creds>;
  /** A cheap authenticated call; `signal` given by the suite for timeouts. */
  probe(creds: Creds, signal?: AbortSignal): Promise<unknown>;
  /** Seeds more records than fit one page and lists them to the end. */
  listAll(creds: Creds): Promise<{ keys: string[]; expected: string[]; pages: number }>;
  /** A compare-and-set write with the right expectation (answers the value after), then one with a stale one (answers what was thrown). */
  casWrite(creds: Creds): Promise<{ after: number; expectedAfter: number; stale: unknown; afterStale: number }>;
  /** Every throttling answer the provider has, as classified errors (each induced at the fake). */
  throttled(creds: Creds): Promise<Array<{ what: string; error: unknown; expectRetryAfterMs?: number }>>;
  /** A real delivery from the fake, and a bad one; `expect` is what the parse must contain. */
  webhook(): Promise<{ webhooks: ConnectorWebhooks<unknown>; secret: string; good: WebhookRequest; bad: WebhookRequest[]; expect: Record<string, unknown> }>;
  /** Reads a record that does not exist. */
  readMissing(creds: Creds): Promise<unknown>;
  fail(status: number, retryAfterSeconds?: number): void;
  hang(): void;
  clearFaults(): void;
  /** The grant or key is revoked at the provider. */
  revoke(): void;
  /** Refreshes when the pattern can (OAuth); the suite expects REAUTHORIZATION_REQUIRED at the end. */
  recover?(creds: Creds): Promise<unknown>;
}

/** A local server that records webhook POSTs exactly as received (raw bytes, lowercased headers, query). */
export class Receiver {
  readonly received: WebhookRequest[] = [];
  #server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
        const query = Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams);
        this.received.push({ body: new Uint8Array(Buffer.concat(chunks)), headers, query });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => this.#server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
  }
}

/** Follows nothing: answers the `Location` of the fake's authorize redirect (the browser's next stop). */
export async function playBrowser(authorizeUrl: string): Promise<URL> {
  const res = await fetch(authorizeUrl, { redirect: 'manual' });
  await res.arrayBuffer();
  const location = res.headers.get('location');
  if (res.status !== 302 || !location) throw new Error(`authorize answered ${res.status}, not a redirect`);
  return new URL(location);
}

export const ctxOf = (signal: AbortSignal = AbortSignal.timeout(10_000), idempotencyKey = `contract/${Math.random().toString(36).slice(2)}@1#0`) => ({ signal, idempotencyKey });
