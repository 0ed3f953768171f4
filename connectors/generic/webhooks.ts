/**
 * Webhooks of a generic REST API: an HMAC-SHA256 of the raw body in a configurable header (hex
 * or base64, an optional prefix such as `sha256=`), compared in constant time. Pure.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { ConnectorWebhooks, WebhookRequest } from '../kit/contract.js';

export interface GenericWebhookSettings {
  /** Lowercase header name, e.g. `x-signature`. */
  header: string;
  encoding: 'hex' | 'base64';
  prefix?: string;
}

export interface GenericWebhookEvent {
  headers: Readonly<Record<string, string | undefined>>;
  payload: unknown;
}

export function genericWebhooks(o: GenericWebhookSettings): ConnectorWebhooks<GenericWebhookEvent> {
  return {
    verify(request: WebhookRequest, secret: string) {
      let given = request.headers[o.header];
      if (!given) return { ok: false, reason: `missing ${o.header}` };
      if (o.prefix) {
        if (!given.startsWith(o.prefix)) return { ok: false, reason: 'signature prefix missing' };
        given = given.slice(o.prefix.length);
      }
      const expected = createHmac('sha256', secret).update(request.body).digest();
      const actual = Buffer.from(given, o.encoding);
      return actual.length === expected.length && timingSafeEqual(actual, expected) ? { ok: true } : { ok: false, reason: 'signature does not match' };
    },
    parse(request: WebhookRequest) {
      return [{ headers: request.headers, payload: JSON.parse(Buffer.from(request.body).toString('utf8')) as unknown }];
    },
  };
}
