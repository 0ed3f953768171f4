import { z } from '@hono/zod-openapi';
import { router, routes } from '../env.js';
import { errors, json, jsonBody } from '../schemas.js';

const AnyService = z.object({ service: z.enum(['shopify', 'mercadolibre', 'generic']).openapi({ description: 'The marketplace, or generic: a REST API connected with an API key or OAuth client credentials' }) });

const AuthorizeBody = z
  .object({
    tenantId: z.string().min(1).max(200).optional().openapi({ description: 'Operators name the tenant; a vendor connects its own store' }),
    shop: z.string().min(1).max(255).optional().openapi({ example: 'example.myshopify.com', description: 'Shopify: the *.myshopify.com shop' }),
    scopes: z.array(z.string().min(1).max(100)).max(50).optional().openapi({ description: 'Shopify: the access scopes to ask for' }),
    siteId: z.string().min(3).max(3).optional().openapi({ example: 'MLA', description: "MercadoLibre: the site whose authorization domain the seller is sent to" }),
    name: z.string().min(1).max(100).optional().openapi({ description: "generic: the connection's account name (default: the base URL's host)" }),
    baseUrl: z.string().min(1).max(2000).optional().openapi({ example: 'https://api.example.com/v1', description: 'generic: the REST API' }),
    healthCheck: z
      .object({ path: z.string().min(1).max(500), expectStatus: z.number().int().min(100).max(599) })
      .optional()
      .openapi({ description: 'generic: a request that needs the credentials (default GET /health expecting 200)' }),
    credentials: z
      .union([
        z.object({ apiKey: z.string().min(1).max(4000), in: z.enum(['header', 'query']), name: z.string().min(1).max(100) }).strict(),
        z.object({ tokenUrl: z.string().min(1).max(2000), clientId: z.string().min(1).max(500), clientSecret: z.string().min(1).max(4000), scopes: z.array(z.string().min(1).max(200)).max(50).optional() }).strict(),
        z
          .object({
            authorizeUrl: z.string().min(1).max(2000),
            tokenUrl: z.string().min(1).max(2000),
            clientId: z.string().min(1).max(500),
            clientSecret: z.string().min(1).max(4000),
            scopes: z.array(z.string().min(1).max(200)).max(50).optional(),
          })
          .strict(),
        z.object({ certPem: z.string().min(1).max(20_000), keyPem: z.string().min(1).max(20_000), caPem: z.string().min(1).max(20_000).optional(), passphrase: z.string().min(1).max(1000).optional() }).strict(),
      ])
      .optional()
      .openapi({
        description:
          'generic: an API key (header or query parameter), OAuth client credentials, or a client certificate (mutual TLS): checked once, stored in the vault, never answered. OAuth authorization code (authorizeUrl + tokenUrl + client): answered like a marketplace, with the URL to send the user to',
      }),
  })
  .openapi('IntegrationAuthorizeRequest');

const Authorization = z
  .object({ authorizationUrl: z.string(), state: z.string(), expiresAt: z.string() })
  .openapi('IntegrationAuthorization');

const Connection = z
  .object({
    connectionId: z.string(),
    provider: z.string(),
    account: z.string(),
    state: z.string().openapi({ description: 'connecting, connected, token_expired, reauthorization_required, paused or disconnected' }),
    tokenExpiresAt: z.string().nullable(),
    scopes: z.array(z.string()),
    webhookSubscriptions: z.array(z.string()),
    lastWebhook: z.object({ webhookId: z.string(), topic: z.string(), receivedAt: z.string() }).nullable(),
    connectedAt: z.string().nullable(),
    lastRefreshAt: z.string().nullable(),
    lastError: z.object({ code: z.string(), message: z.string() }).nullable(),
  })
  .openapi('IntegrationConnection');

const Outbound = z
  .object({
    budget: z.object({
      limit: z.string().openapi({ example: '4/s:40', description: 'The rate budget (RATE_LIMITS), or none' }),
      usedInWindow: z.number().int().openapi({ description: 'Calls made in the current usage window, all processes' }),
      throttledCalls: z.number().int().openapi({ description: 'Calls throttled in the current window: 429 / THROTTLED answers, and calls that waited for their budget' }),
      windowSeconds: z.number().int().optional(),
      scope: z.string().optional().openapi({ description: 'account (Shopify: per store), tenant or app' }),
    }),
    breaker: z.object({
      state: z.enum(['closed', 'open', 'half_open']),
      consecutiveFailures: z.number().int(),
      openedAt: z.string().nullable(),
    }),
    errorRate: z.number().openapi({ description: 'Failed calls / calls over the last 5 minutes' }),
    averageResponseMs: z.number().nullable().openapi({ description: 'Average provider response time over the last 5 minutes' }),
    calls: z.number().int().optional(),
    health: z.enum(['healthy', 'degraded']).optional().openapi({ description: 'degraded while the error rate is over 5% (IntegrationAlert)' }),
    deadLetters: z.number().int().optional().openapi({ description: "Open dead letters of this connection's calls" }),
  })
  .openapi('IntegrationOutbound');

const ConnectionStatus = Connection.extend({ outbound: Outbound.optional().openapi({ description: 'The outbound call door: budget, breaker, error rate, response time, dead letters' }) }).loose();

const Disconnected = z
  .object({
    provider: z.string(),
    tenantId: z.string(),
    connections: z.array(
      Connection.extend({
        revoked: z.boolean().openapi({ description: 'The provider revoked the grant (Shopify); false when it could not or has no revoke endpoint (MercadoLibre)' }),
        reason: z.string().optional().openapi({ description: 'Why the grant was not revoked' }),
      }),
    ),
  })
  .openapi('IntegrationDisconnected');

const Connections = z.object({ provider: z.string(), tenantId: z.string(), connections: z.array(ConnectionStatus) }).openapi('IntegrationConnections');
const TenantQuery = z.object({ tenantId: z.string().min(1).max(200).optional().openapi({ description: 'Operators name the tenant' }) });

const route = routes('Integrations');
const publicRoute = routes('Integrations', { public: true });

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/**
 * `/api/integrations/:service`: connect a marketplace over OAuth, see the connection, end it.
 * The callback carries no token: the provider redirects the merchant's browser there and the
 * signed `state` authenticates it (app.ts exempts its path from the bearer check).
 */
export function integrationRoutes() {
  const app = router();

  app.openapi(
    route({
      method: 'post',
      path: '/{service}/auth',
      summary:
        'Start an OAuth authorization (Shopify, MercadoLibre): the URL to send the merchant to, and its signed state (10 minutes, single use). For generic: take the credentials, check them once against the service, store them and answer the connection',
      request: { params: AnyService, body: jsonBody(AuthorizeBody) },
      responses: {
        200: json(z.union([Authorization, Connection]), 'Where to send the merchant; for generic, the connection (never a secret)'),
        ...errors,
        503: json(z.unknown(), 'The provider is not configured'),
      },
    }),
    async (c) => {
      const service = c.req.valid('param').service;
      const body = c.req.valid('json');
      const integrations = c.get('services').integrations;
      if (service !== 'generic') return c.json(await integrations.authorize(c.get('principal'), service, body), 200);
      if (body.credentials && 'authorizeUrl' in body.credentials) return c.json(await integrations.authorizeGeneric(c.get('principal'), body), 200);
      return c.json(await integrations.connectWithCredentials(c.get('principal'), service, body), 200);
    },
  );

  app.openapi(
    publicRoute({
      method: 'get',
      path: '/{service}/callback',
      summary: "The provider's redirect after the merchant's consent (no bearer token: the signed state authenticates it)",
      request: {
        params: AnyService,
        query: z
          .object({ state: z.string().max(2000).optional(), code: z.string().max(2000).optional(), shop: z.string().max(255).optional(), hmac: z.string().max(200).optional(), timestamp: z.string().max(20).optional() })
          .loose(),
      },
      responses: {
        200: { description: 'Connected: a small HTML page, or JSON when asked for', content: { 'text/html': { schema: z.string() }, 'application/json': { schema: Connection } } },
        ...errors,
      },
    }),
    async (c) => {
      const r = await c.get('services').integrations.callback(c.req.valid('param').service, c.req.query());
      if ((c.req.header('accept') ?? '').includes('application/json')) return c.json(r.connection, 200);
      const name = r.provider === 'shopify' ? 'Shopify' : r.provider === 'mercadolibre' ? 'MercadoLibre' : 'the service';
      return c.html(
        `<!doctype html><html><head><meta charset="utf-8"><title>Connected to ${name}</title></head><body><h1>Connected to ${name}</h1><p>Account ${escape(r.connection.account)} is connected. You can close this window.</p></body></html>`,
        200,
      );
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/{service}/status',
      summary: "The caller's connections to the service: state, token expiry (never a token), scopes, webhook subscriptions, last webhook; the outbound door's budget, breaker, error rate, response time and dead letters",
      request: { params: AnyService, query: TenantQuery },
      responses: { 200: json(Connections, 'The connections'), ...errors },
    }),
    async (c) => c.json(await c.get('services').integrations.status(c.get('principal'), c.req.valid('param').service, c.req.valid('query').tenantId), 200),
  );

  app.openapi(
    route({
      method: 'delete',
      path: '/{service}',
      summary: 'Disconnect: revoke the grant at the provider where it can be, forget the credentials; the connections become disconnected',
      request: { params: AnyService, query: TenantQuery },
      responses: { 200: json(Disconnected, 'The disconnected connections, each with whether the provider revoked its grant'), ...errors },
    }),
    async (c) => c.json(await c.get('services').integrations.disconnect(c.get('principal'), c.req.valid('param').service, c.req.valid('query').tenantId), 200),
  );

  return app;
}
