/**
 * HTTP(S) for the generic connector over node:http/node:https, so a request can present a
 * client certificate (mutual TLS) and trust a private CA; aborted by the caller's signal.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** TLS material every request of a connector uses (a private CA of the server). */
export interface Transport {
  ca?: string;
}

export interface Sent {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body as JSON, or undefined when it is not JSON. */
  json(): unknown;
}

export function send(
  t: Transport,
  o: { method: string; url: string | URL; headers?: Record<string, string>; body?: string; signal: AbortSignal; tls?: { cert: string; key: string; passphrase?: string; ca?: string } },
): Promise<Sent> {
  const url = typeof o.url === 'string' ? new URL(o.url) : o.url;
  const https = url.protocol === 'https:';
  return new Promise<Sent>((resolve, reject) => {
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['content-length'] = String(Buffer.byteLength(o.body));
    const ca = o.tls?.ca ?? t.ca;
    const options = {
      method: o.method,
      headers,
      signal: o.signal,
      ...(https ? { ...(ca ? { ca } : {}), ...(o.tls ? { cert: o.tls.cert, key: o.tls.key, ...(o.tls.passphrase ? { passphrase: o.tls.passphrase } : {}) } : {}) } : {}),
    };
    const req = (https ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json() {
            try {
              return text ? (JSON.parse(text) as unknown) : undefined;
            } catch {
              return undefined;
            }
          },
        });
      });
    });
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}
