import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { DomainCode, DomainError } from '../services/common/errors.js';
import type { Logger } from '../runtime/logger.js';
import type { Services } from '../services/index.js';
import type { Env } from './env.js';
import { authenticate } from './middleware/auth.js';
import { guardInput } from './middleware/guard.js';
import { observe } from './middleware/observe.js';
import { consoleRoutes } from './console/index.js';
import { traceRequests } from './middleware/trace.js';
import { createMetrics } from './metrics.js';
import { problemResponse, toProblem } from './problem.js';
import { actorRoutes } from './routes/actors.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { coordinationRoutes } from './routes/coordination.js';
import { dependencyRoutes } from './routes/dependencies.js';
import { ecosystemRoutes } from './routes/ecosystem.js';
import { eventRoutes } from './routes/events.js';
import { integrationRoutes } from './routes/integrations.js';
import { inventoryRoutes } from './routes/inventory.js';
import { integrationWebhookRoutes, WEBHOOK_PATH } from './routes/integration-webhooks.js';
import { playbookConnectionRoutes } from './routes/playbook-connections.js';
import { playbookTemplateRoutes } from './routes/playbook-templates.js';
import { workflowCoordinationRoutes } from './routes/workflows-coordination.js';
import { PLAYBOOK_SOURCE_PATH, PLAYBOOK_WEBHOOK_PATH, playbookRoutes, YAML_TYPE } from './routes/playbooks.js';
import { relationshipRoutes } from './routes/relationships.js';
import { resourceRoutes } from './routes/resources.js';
import { timerRoutes } from './routes/timers.js';
import { workflowRoutes } from './routes/workflows.js';

export interface AppDeps {
  /** The application layer (`services/`); the routes call nothing else. */
  services: Services;
  log: Logger;
  /** HS256 secret for bearer tokens; defaults to the runtime's JWT_SECRET. */
  jwtSecret?: string;
  /** Largest accepted request body in bytes (413 above it). */
  bodyLimitBytes?: number;
  /** Node process metrics on /metrics as well. */
  defaultMetrics?: boolean;
}

export const API_PREFIX = '/api/v1/vendor-partner-coordination';
const OAUTH_CALLBACK = /^\/api\/integrations\/[a-z]+\/callback$/;
const JSON_TYPE = /^application\/([a-z0-9.+-]+\+)?json\s*(;|$)/i;

/**
 * The HTTP edge. Routes translate HTTP to domain and runtime calls and back; every error leaves
 * through the one `onError` as application/problem+json. Testable without a port via
 * `app.request(...)`.
 */
export function createApp(deps: AppDeps): OpenAPIHono<Env> {
  const { services } = deps;
  const { runtime, clock } = services;
  const secret = deps.jwtSecret ?? runtime.config.jwtSecret;
  if (!secret) throw new DomainError(DomainCode.Unauthenticated, 'createApp needs a JWT secret (JWT_SECRET)');
  const metrics = createMetrics(runtime, { defaultMetrics: deps.defaultMetrics });
  services.registerMetrics(metrics.registry);
  const app = new OpenAPIHono<Env>();

  app.use('*', observe(deps.log, metrics.latency));
  // API requests only: health checks and metrics scrapes would be most of the spans and none of the work
  if (runtime.tracing.enabled) app.use('/api/*', traceRequests(runtime.tracing));
  app.use('*', async (c, next) => {
    c.set('services', services);
    await next();
  });

  app.get('/health', async (c) => {
    const [rt, sagas, integrations] = await Promise.all([runtime.health(), services.sagas.health().catch(() => null), services.ecosystem.health.summary().catch(() => null)]);
    const base = sagas ? { ...rt, status: rt.status === 'up' && sagas.status === 'degraded' ? ('degraded' as const) : rt.status, sagas } : rt;
    // the registry's integrations by health status: theirs, not Concord's, so they do not change `status`
    const h = integrations ? { ...base, integrations } : base;
    return c.json(h, h.status === 'down' ? 503 : 200);
  });
  // browsers ask for it on every console page; nothing to show is not an error
  app.get('/favicon.ico', (c) => c.body(null, 204, { 'cache-control': 'public, max-age=86400' }));
  app.get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));

  const maxSize = deps.bodyLimitBytes ?? 1024 * 1024;
  const limit = bodyLimit({
    maxSize,
    onError: () => {
      throw new DomainError(DomainCode.PayloadTooLarge, `request body larger than ${maxSize} bytes`, { limit: maxSize });
    },
  });
  // decided from the headers when they tell (node-server then need not build a full Request);
  // only a chunked body is counted as it streams in
  app.use('/api/*', (c, next) => {
    if (c.req.header('transfer-encoding') !== undefined) return limit(c, next);
    const length = c.req.header('content-length');
    if (length !== undefined && Number(length) > maxSize) return limit(c, next);
    return next();
  });
  app.use('/api/*', async (c, next) => {
    const type = c.req.header('content-type');
    const hasBody = c.req.header('content-length') !== undefined ? c.req.header('content-length') !== '0' : c.req.header('transfer-encoding') !== undefined;
    // a playbook's source may be YAML as well
    const yamlOk = type !== undefined && YAML_TYPE.test(type) && PLAYBOOK_SOURCE_PATH.test(c.req.path);
    if ((c.req.method === 'POST' || c.req.method === 'PUT' || c.req.method === 'PATCH') && hasBody && !(type && JSON_TYPE.test(type)) && !yamlOk) {
      throw new DomainError(DomainCode.UnsupportedMediaType, 'request bodies must be application/json');
    }
    await next();
  });
  // a webhook's signature covers its raw bytes: read them first, so the guard's text() below is
  // decoded from them and the route gets them as they came (a BOM or a bad byte intact)
  app.use('/api/integrations/:service/webhook', async (c, next) => {
    if (c.req.method === 'POST') await c.req.arrayBuffer();
    await next();
  });
  app.use('/api/*', guardInput());
  // the coordination health document is public like /health: load balancers carry no token;
  // a provider's webhook carries none either (it is signed, or checked against the connection)
  const auth = authenticate(secret, clock);
  // the OAuth callback is reached by the merchant's browser, sent by the provider: the signed
  // state authenticates it; a provider's webhook is authenticated by its signature. Neither
  // carries a bearer token
  const isPublic = (method: string, path: string) =>
    (method === 'GET' && (path === `${API_PREFIX}/health` || OAUTH_CALLBACK.test(path))) || (method === 'POST' && (WEBHOOK_PATH.test(path) || PLAYBOOK_WEBHOOK_PATH.test(path)));
  app.use('/api/*', (c, next) => (isPublic(c.req.method, c.req.path) ? next() : auth(c, next)));
  // a tenant past its quota is refused before any work (no database, no actor)
  if (services.quotas.enabled) {
    app.use('/api/*', async (c, next) => {
      const tenantId = c.get('principal')?.tenantId;
      const wait = tenantId ? services.quotas.take(tenantId, clock.now()) : 0;
      // a little over the rate: wait for the token (a timer, no work) rather than refuse
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await next();
    });
  }

  // past ADMISSION_LIMIT requests at work, a request waits in its tenant's queue (no database,
  // no actor yet) and free places go to the tenants in turn: one tenant's flood queues here,
  // behind itself, instead of in the pool and the group commit ahead of everyone else's work
  const admission = services.admission;
  if (admission) app.use('/api/*', (c, next) => admission.run(c.get('principal')?.tenantId ?? '', next));

  app.route(API_PREFIX, relationshipRoutes());
  app.route(API_PREFIX, dependencyRoutes());
  app.route(API_PREFIX, resourceRoutes());
  app.route(API_PREFIX, coordinationRoutes());
  app.route(API_PREFIX, eventRoutes());
  app.route(API_PREFIX, workflowCoordinationRoutes());
  app.route('/api/v1/workflows', workflowRoutes());
  app.route('/api/v1/actors', actorRoutes());
  app.route('/api/v1/timers', timerRoutes());
  app.route('/api/v1/dead-letters', deadLetterRoutes());
  app.route('/api/integrations', inventoryRoutes());
  app.route('/api/v1/ecosystem', ecosystemRoutes());
  app.route('/api/integrations', integrationRoutes());
  app.route('/api/integrations', integrationWebhookRoutes());
  app.route('/api/partnerships', playbookRoutes());
  // the operator console: its own cookie session, never accepted by /api (which wants the bearer header)
  app.route('/console', consoleRoutes({ secret, clock, log: deps.log }));
  app.route('/api/partnerships', playbookTemplateRoutes());
  app.route('/api/partnerships', playbookConnectionRoutes());

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Concord coordination API',
      version: '1.0.0',
      description: 'Vendor-partner coordination (relationships, dependencies, shared resources, health) and operator inspection of actors. Errors are application/problem+json.',
    },
  });

  app.notFound((c) => problemResponse(c, toProblem(new DomainError(DomainCode.RouteNotFound, `no route for ${c.req.method} ${c.req.path}`), c.get('requestId') ?? '', c.req.path)));
  app.onError((err, c) => {
    const requestId = c.get('requestId') ?? '';
    const problem = toProblem(err, requestId, c.req.path);
    if (problem.status >= 500) (c.get('log') ?? deps.log).error({ err, reqId: requestId }, 'unhandled error');
    const res = problemResponse(c, problem);
    res.headers.set('x-request-id', requestId);
    // refused before its body was read: the rest of it is still on the socket, so a reused
    // keep-alive connection would hang the client's next request; close it instead
    if (problem.status === 413) res.headers.set('connection', 'close');
    return res;
  });
  return app;
}
