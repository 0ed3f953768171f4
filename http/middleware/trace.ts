import type { MiddlewareHandler } from 'hono';
import { SpanKind, SpanStatusCode, type Tracing } from '../../runtime/tracing.js';
import type { Env } from '../env.js';

/**
 * One server span per request (`POST /api/v1/...`), child of the caller's `traceparent` when it
 * sends one, active while the route runs: the transitions the request causes are its children.
 * With tracing off this is not installed at all.
 */
export function traceRequests(tracing: Tracing): MiddlewareHandler<Env> {
  return async (c, next) => {
    const span = tracing.start(`${c.req.method} ${c.req.path}`, SpanKind.SERVER, tracing.parent(c.req.header('traceparent')), {
      'http.request.method': c.req.method,
      'url.path': c.req.path,
    })!;
    try {
      await tracing.within(span, next);
    } finally {
      const route = c.req.routePath && c.req.routePath !== '/*' ? c.req.routePath : undefined;
      if (route) {
        span.setAttribute('http.route', route);
        span.updateName(`${c.req.method} ${route}`);
      }
      span.setAttribute('http.response.status_code', c.res.status);
      if (c.res.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
  };
}
