/**
 * The registry's data: the tier table and the integration templates. Both are JSON files, read
 * once at start-up and checked: a new template is a file in `templates/` (or in
 * `ECOSYSTEM_TEMPLATES_DIR`), a different tier table is a file named by `ECOSYSTEM_TIERS_FILE`.
 * A bad file stops start-up with its name and the problem.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConcordError, ErrorCode } from '../../runtime/errors.js';

export const AUTH_PATTERNS = ['api_key', 'oauth2', 'service_account', 'certificate'] as const;
export type RegistryAuthPattern = (typeof AUTH_PATTERNS)[number];
export const TIERS = ['enterprise', 'professional', 'community'] as const;
export type TierName = (typeof TIERS)[number];

const Tier = z
  .object({
    description: z.string().default(''),
    /** Availability target in percent (e.g. 99.9); null: no SLA. */
    slaTarget: z.number().min(0).max(100).nullable(),
    /** Share of a provider's rate budget this tier's integrations get (0..1). */
    rateBudgetShare: z.number().min(0).max(1),
    healthCheckIntervalMs: z.number().int().min(100),
    degradedLatencyMs: z.number().int().min(1),
    unhealthyAfter: z.number().int().min(1).max(100),
    productionScopesAllowed: z.boolean(),
  })
  .strict();
export type Tier = z.infer<typeof Tier>;

const TierTable = z
  .object({
    /** Scope patterns that mean production access: `write` (the word, alone or as a part such as `orders.write`), `*:write` (suffix), `admin:*` (prefix). */
    productionScopes: z.array(z.string().min(1)).default([]),
    tiers: z.object({ enterprise: Tier, professional: Tier, community: Tier }).strict(),
    /** The tier marketplace connections (Shopify, MercadoLibre) are shown with. */
    marketplaceTier: z.enum(TIERS).default('professional'),
  })
  .strict();
export type TierTable = z.infer<typeof TierTable>;

const Template = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/),
    name: z.string().min(1),
    description: z.string().default(''),
    /** Platforms it is meant for; empty: any. */
    platforms: z.array(z.string().min(1)).default([]),
    authPatterns: z.array(z.enum(AUTH_PATTERNS)).min(1),
    /** Keys `config` must carry. */
    requiredConfig: z.array(z.string().min(1)).default([]),
    healthCheck: z.object({ path: z.string().startsWith('/'), expectStatus: z.number().int().min(100).max(599) }).strict(),
    defaultFeatures: z.array(z.string().min(1)).default([]),
    /** Features an integration of this template may declare; empty: any. */
    features: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type Template = z.infer<typeof Template>;

const here = path.dirname(fileURLToPath(import.meta.url));
export const BUILTIN_TIERS_FILE = path.join(here, 'tiers.json');
export const BUILTIN_TEMPLATES_DIR = path.join(here, 'templates');

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new ConcordError(ErrorCode.InvalidConfig, `ecosystem: cannot read ${file}: ${(err as Error).message}`, { file });
  }
}

function parse<T>(schema: z.ZodType<T>, file: string): T {
  const r = schema.safeParse(readJson(file));
  if (!r.success) {
    const problems = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConcordError(ErrorCode.InvalidConfig, `ecosystem: ${file} is invalid: ${problems.join('; ')}`, { file, problems });
  }
  return r.data;
}

/** The tier table and the templates, loaded and checked. */
export class Catalog {
  readonly tiers: TierTable;
  readonly #templates = new Map<string, Template>();

  constructor(o: { tiersFile?: string | undefined; templatesDir?: string | undefined } = {}) {
    this.tiers = parse(TierTable, o.tiersFile ?? BUILTIN_TIERS_FILE);
    for (const dir of [BUILTIN_TEMPLATES_DIR, ...(o.templatesDir ? [o.templatesDir] : [])]) {
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
        const t = parse(Template, path.join(dir, f));
        if (this.#templates.has(t.id) && dir === BUILTIN_TEMPLATES_DIR) throw new ConcordError(ErrorCode.InvalidConfig, `ecosystem: template ${t.id} defined twice`, { file: f });
        this.#templates.set(t.id, t); // a file in ECOSYSTEM_TEMPLATES_DIR replaces a built-in one of the same id
      }
    }
  }

  tier(name: string): Tier {
    return this.tiers.tiers[name as TierName];
  }

  template(id: string): Template | undefined {
    return this.#templates.get(id);
  }

  templates(): Template[] {
    return [...this.#templates.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  /** The scopes among `scopes` that mean production access (the table's `productionScopes`). */
  productionScopes(scopes: readonly string[]): string[] {
    return scopes.filter((s) => this.tiers.productionScopes.some((p) => matchesScope(s.toLowerCase(), p.toLowerCase())));
  }
}

function matchesScope(scope: string, pattern: string): boolean {
  if (pattern.startsWith('*')) return scope.endsWith(pattern.slice(1));
  if (pattern.endsWith('*')) return scope.startsWith(pattern.slice(0, -1));
  return scope === pattern || scope.split(/[:._\-/ ]/).includes(pattern);
}
