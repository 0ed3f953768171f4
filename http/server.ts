import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';

/** Node's parser errors that have a status of their own; every other malformed request is a 400. */
const PARSER_STATUS: Readonly<Record<string, [number, string]>> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
  HPE_URI_TOO_LONG: [414, 'URI Too Long'],
};

/**
 * A request Node's HTTP parser refused before it reached the app (a space in the request line, a
 * body longer than its Content-Length, headers over 16 KB, a request that took too long): the
 * answer is a problem document like every other error, then the connection closes.
 */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, title] = PARSER_STATUS[err.code ?? ''] ?? [400, 'Bad Request'];
  const code = status === 400 ? 'MALFORMED_REQUEST' : title.toUpperCase().replaceAll(' ', '_');
  const body = JSON.stringify({
    type: `https://concord.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title,
    status,
    detail: status === 400 ? 'the request is not valid HTTP/1.1' : title.toLowerCase(),
    code,
  });
  socket.end(`HTTP/1.1 ${status} ${title}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

export interface ListenOptions {
  port: number;
  hostname: string;
  /** A request must arrive whole within this (a slow-body client is cut off with a 408). */
  requestTimeoutMs?: number;
  /** Its headers within this. */
  headersTimeoutMs?: number;
}

/** The app on a Node HTTP server with the edge's protocol-level rules: problem answers to malformed requests, bounded slow clients. */
export async function listen(fetch: (req: Request) => Response | Promise<Response>, o: ListenOptions): Promise<{ server: ServerType; port: number }> {
  const server = serve({ fetch, port: o.port, hostname: o.hostname });
  const http = server as Server;
  http.requestTimeout = o.requestTimeoutMs ?? 30_000;
  http.headersTimeout = o.headersTimeoutMs ?? 15_000;
  http.removeAllListeners('clientError');
  http.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    http.once('listening', resolve);
    http.once('error', reject);
  });
  return { server, port: (http.address() as AddressInfo).port };
}
