import { z } from '@hono/zod-openapi';
import { CONNECTION_FIELDS } from '../../services/playbooks/connections.js';
import { router, routes } from '../env.js';
import { errors, json, jsonBody } from '../schemas.js';

const PROVIDERS = Object.keys(CONNECTION_FIELDS) as [string, ...string[]];

const Connection = z
  .object({
    provider: z.enum(PROVIDERS),
    account: z.string(),
    tenantId: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()),
    version: z.number().int(),
    updatedAt: z.string(),
  })
  .openapi('PlaybookConnection');

const PutConnection = z
  .strictObject({
    secret: z.record(z.string(), z.string()).openapi({ description: 'sendgrid/mailgun: apiKey; slack: botToken; teams: webhookUrl; twilio: authToken; salesforce: clientId, clientSecret. Stored encrypted, never answered.' }),
    metadata: z.record(z.string(), z.string()).optional().openapi({ description: 'sendgrid: from; mailgun: domain, from; twilio: accountSid, from, messagingServiceSid, keySid; salesforce: instanceUrl' }),
    tenantId: z.string().min(1).max(255).optional().openapi({ description: "Operators only (default: the platform's connections)" }),
  })
  .openapi('PutPlaybookConnection', { example: { secret: { botToken: 'xoxb-...' } } });

const Params = z.object({
  provider: z.string().max(40).openapi({ param: { name: 'provider', in: 'path' } }),
  account: z.string().max(100).openapi({ param: { name: 'account', in: 'path' } }),
});
const TenantQuery = z.object({ tenantId: z.string().min(1).max(255).optional() });
const route = routes('Playbooks');

/** Where `communicate` steps send from and what `webhook` steps sign with: the caller's tenant's, in the vault. */
export function playbookConnectionRoutes() {
  const app = router();

  app.openapi(
    route({
      method: 'get',
      path: '/connections',
      summary: "List the tenant's messaging and CRM connections (never their secrets)",
      request: { query: TenantQuery },
      responses: { 200: json(z.object({ data: z.array(Connection) }), 'The connections'), ...errors },
    }),
    async (c) => c.json({ data: await c.get('services').playbookConnections.list(c.get('principal'), c.req.valid('query').tenantId) } as never, 200),
  );

  app.openapi(
    route({
      method: 'put',
      path: '/connections/{provider}/{account}',
      summary: 'Store (or replace) a connection communicate steps use: sendgrid, mailgun, slack, teams, twilio, salesforce',
      request: { params: Params, body: jsonBody(PutConnection) },
      responses: { 200: json(Connection, 'Stored (without the secret)'), ...errors },
    }),
    async (c) => {
      const { provider, account } = c.req.valid('param');
      return c.json((await c.get('services').playbookConnections.put(c.get('principal'), provider, account, c.req.valid('json'), c.get('requestId'))) as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'delete',
      path: '/connections/{provider}/{account}',
      summary: 'Forget a connection',
      request: { params: Params, query: TenantQuery },
      responses: { 204: { description: 'Forgotten' }, ...errors },
    }),
    async (c) => {
      const { provider, account } = c.req.valid('param');
      await c.get('services').playbookConnections.delete(c.get('principal'), provider, account, c.req.valid('query').tenantId, c.get('requestId'));
      return c.body(null, 204);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/webhook-secrets/{name}',
      summary: 'Make or replace the secret webhook steps sign with (`secret: <name>`; `default` when unnamed); answered once',
      request: { params: z.object({ name: z.string().max(100).openapi({ param: { name: 'name', in: 'path' } }) }), query: TenantQuery },
      responses: { 201: json(z.object({ name: z.string(), secret: z.string(), version: z.number().int() }).openapi('PlaybookWebhookSecret'), 'The new secret (whsec_...), shown only here'), ...errors },
    }),
    async (c) => {
      const out = await c.get('services').playbookConnections.rotateWebhookSecret(c.get('principal'), c.req.valid('param').name, c.req.valid('query').tenantId, c.get('requestId'));
      c.header('cache-control', 'no-store');
      return c.json(out as never, 201);
    },
  );

  return app;
}
