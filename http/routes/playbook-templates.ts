import { z } from '@hono/zod-openapi';
import { TEMPLATE_FORMATS } from '../../services/playbooks/templates.js';
import { router, routes } from '../env.js';
import { Cursor, errors, json, jsonBody, Limit, page } from '../schemas.js';

export const PlaybookTemplate = z
  .object({
    id: z.string(),
    tenantId: z.string().nullable().openapi({ description: "The owner; null for the platform's library, which every tenant may use" }),
    name: z.string(),
    version: z.number().int(),
    description: z.string().nullable(),
    format: z.enum(TEMPLATE_FORMATS),
    source: z.string(),
    createdBy: z.string(),
    createdAt: z.string(),
  })
  .openapi('PlaybookTemplate');

const CreateTemplate = z
  .strictObject({
    name: z.string().min(1).max(100).regex(/^[\w.-]+$/, 'letters, digits and _ . -'),
    source: z.string().min(1).max(65_536).openapi({ description: 'Liquid; variables `inputs`, `steps.<id>.output`, `steps.<id>.status`, `item`' }),
    format: z.enum(TEMPLATE_FORMATS).optional().openapi({ description: 'text (default), markdown, html (outputs escaped) or pdf (a report)' }),
    description: z.string().max(1000).nullable().optional(),
    tenantId: z.string().min(1).max(255).optional().openapi({ description: "Operators only: the tenant whose library it joins (default: the platform's)" }),
  })
  .openapi('CreatePlaybookTemplate', {
    example: { name: 'partner-health', format: 'markdown', source: '# Partner health\n{{ steps.unhealthy.output | size }} integrations need attention:\n{% for i in steps.unhealthy.output %}- {{ i.provider }} {{ i.account }} ({{ i.state }})\n{% endfor %}' },
  });

const IdParam = z.object({ id: z.string().max(100).openapi({ param: { name: 'id', in: 'path' } }) });
const route = routes('Playbooks');

/** The playbook template library: a tenant's own templates and the platform's; another tenant's answer 404. */
export function playbookTemplateRoutes() {
  const app = router();

  app.openapi(
    route({
      method: 'get',
      path: '/templates',
      summary: "List templates: the caller's and the platform's (operators: all), newest first",
      request: { query: z.object({ name: z.string().min(1).max(100).optional(), limit: Limit, cursor: Cursor }) },
      responses: { 200: json(page(PlaybookTemplate, 'PlaybookTemplatePage'), 'A page of templates'), ...errors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const r = await c.get('services').templates.list(c.get('principal'), q);
      return c.json({ data: r.data, pagination: { limit: q.limit, nextCursor: r.nextCursor } } as never, 200);
    },
  );

  app.openapi(
    route({
      method: 'post',
      path: '/templates',
      summary: 'Add a template (the same name again makes its next version, under a new id)',
      request: { body: jsonBody(CreateTemplate) },
      responses: { 201: json(PlaybookTemplate, 'Created'), ...errors },
    }),
    async (c) => {
      const t = await c.get('services').templates.create(c.get('principal'), c.req.valid('json'), c.get('requestId'));
      c.header('location', `${c.req.path}/${t.id}`);
      return c.json(t as never, 201);
    },
  );

  app.openapi(
    route({
      method: 'get',
      path: '/templates/{id}',
      summary: 'Get a template',
      request: { params: IdParam },
      responses: { 200: json(PlaybookTemplate, 'The template'), ...errors },
    }),
    async (c) => c.json((await c.get('services').templates.read(c.get('principal'), c.req.valid('param').id)) as never, 200),
  );

  return app;
}
