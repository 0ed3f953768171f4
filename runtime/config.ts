import { z } from 'zod';
import { ConcordError, ErrorCode } from './errors.js';
import { isDuration } from '../machines/lib/duration.js';
import { parseRateRule, type RateRule } from '../machines/lib/bucket.js';
import { parseRateLimits, type RateLimit } from '../connectors/kit/rate-limit.js';

const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

/**
 * Every environment variable Concord reads, in one place. The README's configuration table is
 * written from this schema; nothing deeper in the tree reads `process.env`.
 */
const EnvSchema = z.object({
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  NATS_URL: optionalString,
  PORT: int(3000, 0, 65535),
  HOST: z.string().default('0.0.0.0'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATA_DIR: z.string().default('./.data'),
  EMBEDDED_PG_PORT: int(0, 0, 65535),
  DB_POOL_SIZE: int(16, 2, 500),
  ACTOR_CACHE_SIZE: int(10_000, 0),
  ACTOR_IDLE_MS: int(300_000, 1_000),
  ACTOR_LIVE_SIZE: int(2_000, 0),
  COMMIT_BATCH_MAX: int(128, 1, 10_000),
  COMMIT_CONCURRENCY: int(2, 1, 256),
  COMMIT_FAIR: z.enum(['true', 'false', '1', '0']).default('true').transform((v) => v === 'true' || v === '1'),
  ADMISSION_LIMIT: int(16, 0, 10_000),
  PARTITIONS: int(16, 1, 4096),
  TIMER_POLL_MS: int(250, 10),
  TIMER_CLAIM_MS: int(15_000, 1_000),
  OUTBOX_BATCH: int(256, 1, 10_000),
  OUTBOX_POLL_MS: int(250, 10),
  INBOX_RETENTION_HOURS: int(168, 1),
  SHUTDOWN_TIMEOUT_MS: int(10_000, 100),
  CONNECTOR_CALL_TIMEOUT_MS: int(30_000, 100),
  INVENTORY_POLL_MS: int(300_000, 1_000),
  JWT_SECRET: optionalString,
  TENANT_QUOTAS: optionalString,
  CREDENTIALS_KEYS: optionalString,
  NATS_PREFIX: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'lowercase letters, digits, _ and -').default('concord'),
  NATS_REPLICAS: int(1, 1, 5),
  NATS_MAX_AGE_HOURS: int(168, 1),
  NATS_DUPLICATE_WINDOW_MS: int(120_000, 1_000),
  NATS_ACK_WAIT_MS: int(10_000, 500),
  NATS_MAX_ACK_PENDING: int(1_000, 1),
  NATS_MAX_ATTEMPTS: int(5, 1, 1_000),
  NATS_RETRY_BACKOFF_MS: int(250, 1),
  NATS_PUBLISH_TIMEOUT_MS: int(5_000, 100),
  // derived from SAGA_SERVICE_PREFIX when unset (`<P>.>`, `<P>.events.>`, `<P>.events.OrderCreatedEvent`)
  NATS_SERVICE_SUBJECTS: optionalString,
  NATS_SERVICE_EVENTS: optionalString,
  NATS_SERVICE_ROUTER_SKIP: optionalString,
  EVENT_MAX_ATTEMPTS: int(8, 1, 1_000),
  EVENT_RETRY_BACKOFF_MS: int(1_000, 1),
  EVENT_RETRY_MAX_MS: int(300_000, 1),
  EVENT_MAX_PAYLOAD_BYTES: int(262_144, 1),
  EVENT_DELIVERY_BATCH: int(64, 1, 10_000),
  EVENT_DELIVERY_POLL_MS: int(200, 5),
  EVENT_DELIVERY_LEASE_MS: int(60_000, 1_000),
  WEBHOOK_TIMEOUT_MS: int(10_000, 50),
  WEBHOOK_ALLOW_PRIVATE_TARGETS: z.enum(['true', 'false', '1', '0', '']).default('false').transform((v) => v === 'true' || v === '1'),
  SAGA_SERVICE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, 'dot-separated subject tokens').default('svc'),
  SAGA_ORDER_TIMEOUT: optionalString,
  SAGA_STEP_TIMEOUTS: optionalString,
  SAGA_RETRY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).optional(),
  SAGA_RETRY_INITIAL_INTERVAL: optionalString,
  SAGA_RETRY_MULTIPLIER: z.coerce.number().min(1).max(100).optional(),
  SAGA_RETRY_MAX_INTERVAL: optionalString,
  SAGA_COMPENSATION_TIMEOUT: optionalString,
  SAGA_COMPENSATION_MAX_RETRIES: z.coerce.number().int().min(0).max(100).optional(),
  SAGA_STUCK_AFTER_MINUTES: int(30, 1),
  SAGA_STUCK_DEGRADED_ABOVE: int(10, 0),
  // Marketplace providers (connectors/shopify, connectors/mercadolibre): optional; a provider
  // whose keys are missing is unconfigured (`unconfiguredProviders`), and the rest of Concord runs.
  SHOPIFY_API_KEY: optionalString,
  SHOPIFY_API_SECRET: optionalString,
  SHOPIFY_WEBHOOK_SECRET: optionalString,
  SHOPIFY_API_VERSION: z.string().regex(/^(\d{4}-(01|04|07|10)|unstable)$/, 'a quarterly version YYYY-01|04|07|10, or unstable').default('2026-04'),
  SHOPIFY_SHOP_URL_TEMPLATE: z
    .string()
    .default('https://{shop}')
    .refine((v) => v.includes('{shop}') && /^https?:\/\//.test(v), 'an http(s) URL containing {shop}'),
  ML_CLIENT_ID: optionalString,
  ML_CLIENT_SECRET: optionalString,
  ML_WEBHOOK_SECRET: optionalString,
  ML_API_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.mercadolibre.com'),
  ML_AUTH_BASE_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  PUBLIC_BASE_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  // The outbound call door (services/integrations/outbound/): budgets, retries, breaker, alert.
  RATE_LIMITS: optionalString,
  OUTBOUND_MAX_ATTEMPTS: int(3, 1, 20),
  OUTBOUND_RETRY_INITIAL_MS: int(1_000, 1),
  OUTBOUND_RETRY_MAX_MS: int(30_000, 1),
  OUTBOUND_RETRY_JITTER: z.coerce.number().min(0).max(1).default(0.2),
  BREAKER_FAILURE_THRESHOLD: int(5, 1, 1_000),
  BREAKER_COOLDOWN_MS: int(30_000, 100),
  OUTBOUND_ALERT_ERROR_RATE: z.coerce.number().min(0).max(1).default(0.05),
  OUTBOUND_ALERT_WINDOW_MS: int(300_000, 1_000),
  OUTBOUND_ALERT_MIN_CALLS: int(20, 1),
  OUTBOUND_STATS_WINDOW_MS: int(60_000, 1_000, 3_600_000),
  // The partner registry (services/ecosystem/)
  ECOSYSTEM_TIERS_FILE: optionalString,
  ECOSYSTEM_TEMPLATES_DIR: optionalString,
  ECOSYSTEM_ROTATION_DAYS: int(90, 1, 3650),
  ECOSYSTEM_USAGE_FLUSH_MS: int(10_000, 100, 3_600_000),
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  OTEL_SERVICE_NAME: z.string().min(1).max(200).default('concord'),
});

export interface Config {
  readonly databaseUrl: string | undefined;
  readonly natsUrl: string | undefined;
  readonly port: number;
  readonly host: string;
  readonly logLevel: string;
  readonly dataDir: string;
  readonly embeddedPgPort: number;
  readonly dbPoolSize: number;
  readonly actorCacheSize: number;
  /** Cached actors kept started between transitions (the most recently used ones). */
  readonly actorLiveSize: number;
  readonly actorIdleMs: number;
  readonly commitBatchMax: number;
  readonly commitConcurrency: number;
  /** Group-commit batches formed round-robin across tenants (`COMMIT_FAIR`, default on); off: first come, first served. */
  readonly commitFair: boolean;
  /**
   * API requests worked on at once, all tenants together (`ADMISSION_LIMIT`, default 16; 0: no
   * limit); past it requests wait in their tenant's queue and free places go to tenants in turn.
   */
  readonly admissionLimit: number;
  readonly partitions: number;
  readonly timerPollMs: number;
  readonly timerClaimMs: number;
  readonly outboxBatch: number;
  readonly outboxPollMs: number;
  readonly inboxRetentionHours: number;
  readonly shutdownTimeoutMs: number;
  /** OpenTelemetry traces: exported over OTLP/HTTP (JSON) to `<endpoint>/v1/traces` when set; off (no spans at all) when not. */
  readonly tracing: { readonly endpoint: string | undefined; readonly serviceName: string };
  readonly connectorCallTimeoutMs: number;
  /** INVENTORY_POLL_MS: how often each inventory sync polls its channel for changes a webhook missed. */
  readonly inventoryPollMs: number;
  readonly jwtSecret: string | undefined;
  /** Per-tenant API quotas from `TENANT_QUOTAS` (the edge answers 429 past them). */
  readonly tenantQuotas: TenantQuotas;
  /**
   * The credential vault's key ring from `CREDENTIALS_KEYS` (`id:base64key,...`): the first key
   * encrypts, all decrypt. Unset: generated under DATA_DIR in the embedded default, required
   * with DATABASE_URL (services/integrations/keys.ts).
   */
  readonly credentialsKeys: readonly CredentialKey[] | undefined;
  readonly nats: NatsConfig;
  readonly events: EventsConfig;
  readonly saga: SagaConfig;
  readonly providers: ProvidersConfig;
  readonly outbound: OutboundConfig;
  readonly ecosystem: EcosystemConfig;
}

/** The outbound call door (services/integrations/outbound/). */
export interface OutboundConfig {
  /** Per provider, from the seed's defaults and `RATE_LIMITS`; null: no budget. */
  readonly rateLimits: Readonly<Record<string, RateLimit | null>>;
  /** Attempts per call in all (the seed's 3), backoff from `retryInitialMs` doubling up to `retryMaxMs`, less up to `retryJitter` of it. */
  readonly maxAttempts: number;
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  readonly retryJitter: number;
  /** Consecutive failures that open a breaker (the seed's 5), and how long it stays open before one probe. */
  readonly breakerThreshold: number;
  readonly breakerCooldownMs: number;
  /** Error rate above which a key turns `degraded` (the seed's 5%), over `alertWindowMs`, once it has `alertMinCalls` calls. */
  readonly alertErrorRate: number;
  readonly alertWindowMs: number;
  readonly alertMinCalls: number;
  /** The window `integration_rate_limits` counts usage in. */
  readonly statsWindowMs: number;
}

/** The partner registry (services/ecosystem/). */
export interface EcosystemConfig {
  /** A JSON tier table replacing the built-in one (services/ecosystem/tiers.json); undefined: the built-in. */
  readonly tiersFile: string | undefined;
  /** A folder of template JSON files added to the built-in ones (services/ecosystem/templates/). */
  readonly templatesDir: string | undefined;
  /** Credentials older than this many days are a compliance finding. */
  readonly rotationDays: number;
  /** How often the in-memory usage counters are added to `ecosystem_usage_hourly`. */
  readonly usageFlushMs: number;
}

/**
 * The marketplace providers' settings. Connectors never read them: the caller passes them to
 * the connector factories. Secrets stay here and in the vault, never in a log or an answer.
 */
export interface ProvidersConfig {
  /** What redirect and webhook URLs are built from (default `http://localhost:$PORT`), without a trailing slash. */
  readonly publicBaseUrl: string;
  readonly shopify: {
    readonly apiKey: string | undefined;
    readonly apiSecret: string | undefined;
    /** Defaults to the API secret (Shopify signs webhooks with the app's client secret). */
    readonly webhookSecret: string | undefined;
    readonly apiVersion: string;
    /** `https://{shop}`; tests and the demo point it at the local fake (`http://127.0.0.1:4010/{shop}`). */
    readonly shopUrlTemplate: string;
  };
  readonly mercadolibre: {
    readonly clientId: string | undefined;
    readonly clientSecret: string | undefined;
    readonly webhookSecret: string | undefined;
    readonly apiBaseUrl: string;
    /** Overrides the country's authorization domain (`https://auth.mercadolibre.com.ar`, ...). */
    readonly authBaseUrl: string | undefined;
  };
}

/** The providers whose required variables are missing, with the variables' names (an empty list: all configured). */
export function unconfiguredProviders(p: ProvidersConfig): Array<{ provider: 'shopify' | 'mercadolibre'; missing: string[] }> {
  const out: Array<{ provider: 'shopify' | 'mercadolibre'; missing: string[] }> = [];
  const shopify = [p.shopify.apiKey ? undefined : 'SHOPIFY_API_KEY', p.shopify.apiSecret ? undefined : 'SHOPIFY_API_SECRET'].filter((x): x is string => x !== undefined);
  if (shopify.length > 0) out.push({ provider: 'shopify', missing: shopify });
  const ml = [p.mercadolibre.clientId ? undefined : 'ML_CLIENT_ID', p.mercadolibre.clientSecret ? undefined : 'ML_CLIENT_SECRET'].filter((x): x is string => x !== undefined);
  if (ml.length > 0) out.push({ provider: 'mercadolibre', missing: ml });
  return out;
}

/**
 * Saga settings (docs/saga.md). Durations are ISO-8601 (`PT1M`); unset means the definition's
 * own value. `stepTimeouts` overrides per step name: `INVENTORY_RESERVATION=PT30S,PAYMENT_PROCESSING=PT1M`.
 */
export interface SagaConfig {
  /** First subject tokens of service commands and events: `<prefix>.inventory.reserve`, `<prefix>.events.<Name>`. */
  readonly servicePrefix: string;
  readonly orderTimeout: string | undefined;
  readonly stepTimeouts: Readonly<Record<string, string>>;
  readonly retryMaxAttempts: number | undefined;
  readonly retryInitialInterval: string | undefined;
  readonly retryMultiplier: number | undefined;
  readonly retryMaxInterval: string | undefined;
  readonly compensationTimeout: string | undefined;
  readonly compensationMaxRetries: number | undefined;
  /** A saga still running this long after it started counts as stuck. */
  readonly stuckAfterMs: number;
  /** Health turns degraded when more sagas than this are stuck. */
  readonly stuckDegradedAbove: number;
}

function sagaDurations(e: z.infer<typeof EnvSchema>): { stepTimeouts: Record<string, string>; problems: string[] } {
  const problems: string[] = [];
  const check = (name: string, v: string | undefined) => {
    if (v !== undefined && !isDuration(v)) problems.push(`${name}: not an ISO-8601 duration: ${v}`);
  };
  check('SAGA_ORDER_TIMEOUT', e.SAGA_ORDER_TIMEOUT);
  check('SAGA_RETRY_INITIAL_INTERVAL', e.SAGA_RETRY_INITIAL_INTERVAL);
  check('SAGA_RETRY_MAX_INTERVAL', e.SAGA_RETRY_MAX_INTERVAL);
  check('SAGA_COMPENSATION_TIMEOUT', e.SAGA_COMPENSATION_TIMEOUT);
  const stepTimeouts: Record<string, string> = {};
  for (const part of (e.SAGA_STEP_TIMEOUTS ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [step, value] = part.split('=').map((x) => x.trim());
    if (!step || !value) problems.push(`SAGA_STEP_TIMEOUTS: expected STEP=PT1M, got '${part}'`);
    else {
      check(`SAGA_STEP_TIMEOUTS ${step}`, value);
      stepTimeouts[step] = value;
    }
  }
  return { stepTimeouts, problems };
}

/** Cross-integration event delivery (runtime/events); see docs/workflows.md. */
export interface EventsConfig {
  /** Attempts per delivery before it is dead-lettered (`dead`). */
  readonly maxAttempts: number;
  /** First retry delay; doubles per attempt up to `retryMaxMs` (a later Retry-After wins). */
  readonly retryBackoffMs: number;
  readonly retryMaxMs: number;
  /** Largest accepted `payload` (JSON bytes); larger is a 413. */
  readonly maxPayloadBytes: number;
  readonly batch: number;
  readonly pollMs: number;
  /** How long a claimed delivery stays claimed if its process dies mid-attempt; keep it above webhookTimeoutMs. */
  readonly leaseMs: number;
  readonly webhookTimeoutMs: number;
  /** Allow webhook URLs that resolve to private, loopback or link-local addresses (tests, labs). */
  readonly allowPrivateTargets: boolean;
}

/** The JetStream transport's settings (used only when `natsUrl` is set); see docs/nats.md. */
export interface NatsConfig {
  /** First subject token and stream-name prefix: `<prefix>.actor.…`, stream `<PREFIX>_ACTORS`. */
  readonly prefix: string;
  readonly replicas: number;
  readonly maxAgeMs: number;
  readonly duplicateWindowMs: number;
  readonly ackWaitMs: number;
  readonly maxAckPending: number;
  /** Attempts per message before it is dead-lettered (`failed`). */
  readonly maxAttempts: number;
  /** First retry delay; doubles per attempt, capped at 30 s. */
  readonly retryBackoffMs: number;
  readonly publishTimeoutMs: number;
  /** Subjects of the service stream (commands to services and the events they answer with). */
  readonly serviceSubjects: string;
  /** The subset routed to actors by correlation id. */
  readonly serviceEvents: string;
  /** Subjects (patterns) within it that other consumers own: the router acks and ignores them. */
  readonly routerSkip: readonly string[];
}

/**
 * One AES-256 key of the credential vault. The key bytes are a non-enumerable property, so a
 * logged or serialized config shows the id only.
 */
export interface CredentialKey {
  readonly id: string;
  readonly key: Buffer;
}

/** A key id: short, and free of the `:` and `,` that separate the variable's parts and the ciphertext envelope. */
export const CREDENTIAL_KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

export function credentialKey(id: string, key: Buffer): CredentialKey {
  const k = { id } as { id: string; key: Buffer };
  Object.defineProperty(k, 'key', { value: key, enumerable: false });
  return Object.freeze(k);
}

/**
 * Parses `CREDENTIALS_KEYS` (`id:base64key,...`, each key 32 bytes in base64 or base64url).
 * Problems name the entry by its id or position, never by its key material.
 */
export function parseCredentialKeys(value: string): { keys: CredentialKey[]; problems: string[] } {
  const keys: CredentialKey[] = [];
  const problems: string[] = [];
  const entries = value.split(',').map((p) => p.trim());
  entries.forEach((entry, n) => {
    const sep = entry.indexOf(':');
    const id = sep < 0 ? '' : entry.slice(0, sep).trim();
    const material = sep < 0 ? '' : entry.slice(sep + 1).trim();
    const where = `CREDENTIALS_KEYS entry ${n + 1}${CREDENTIAL_KEY_ID.test(id) ? ` ('${id}')` : ''}`;
    if (!CREDENTIAL_KEY_ID.test(id) || material === '') {
      problems.push(`${where}: expected id:base64key, the id 1-32 letters, digits, _ or -`);
      return;
    }
    if (keys.some((k) => k.id === id)) {
      problems.push(`${where}: key id '${id}' appears twice`);
      return;
    }
    const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(material) ? Buffer.from(material.replace(/-/g, '+').replace(/_/g, '/'), 'base64') : Buffer.alloc(0);
    if (key.length !== 32) {
      problems.push(`${where}: the key must be 32 bytes in base64 (openssl rand -base64 32)`);
      return;
    }
    keys.push(credentialKey(id, key));
  });
  return { keys, problems };
}

/**
 * Per-tenant API quotas: `default` applies to every vendor and partner token without a rule of
 * its own; `null` means unlimited. Each process enforces its own buckets.
 */
export interface TenantQuotas {
  readonly default: RateRule | null;
  readonly tenants: ReadonlyMap<string, RateRule | null>;
}

/**
 * `TENANT_QUOTAS`: `100/s:200` (every tenant), or `default=100/s:200,vendor-7=1000/s,partner-3=off`.
 * Unset or `off`: no quotas.
 */
export function parseTenantQuotas(text: string | undefined): { quotas: TenantQuotas; problems: string[] } {
  const problems: string[] = [];
  const tenants = new Map<string, RateRule | null>();
  let def: RateRule | null = null;
  const rule = (v: string): RateRule | null => {
    if (v.trim().toLowerCase() === 'off') return null;
    const r = parseRateRule(v);
    if (typeof r === 'string') {
      problems.push(`TENANT_QUOTAS: ${r}`);
      return null;
    }
    return r;
  };
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      def = rule(part);
      continue;
    }
    const name = part.slice(0, eq).trim();
    if (name === '') {
      problems.push(`TENANT_QUOTAS: '${part}' has no tenant before '='`);
      continue;
    }
    if (name === 'default') def = rule(part.slice(eq + 1));
    else tenants.set(name, rule(part.slice(eq + 1)));
  }
  return { quotas: Object.freeze({ default: def, tenants }), problems };
}

/**
 * Whether a NATS subject filter (`*` one token, `>` one or more trailing tokens) matches a subject.
 *
 * @example
 * subjectMatches('svc.>', 'svc.inventory.changed') // true
 */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return i === f.length - 1 && s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

/**
 * The service stream's subjects, derived from SAGA_SERVICE_PREFIX unless set, and checked: the
 * subjects the services consume from that stream (`<P>.inventory.changed`, the inventory intake;
 * `<P>.events.OrderCreatedEvent`, the saga intake) must be in it, or JetStream refuses the
 * consumers at start with a raw error.
 */
function serviceSubjects(e: { SAGA_SERVICE_PREFIX: string; NATS_SERVICE_SUBJECTS?: string | undefined; NATS_SERVICE_EVENTS?: string | undefined; NATS_SERVICE_ROUTER_SKIP?: string | undefined }): {
  subjects: string;
  events: string;
  routerSkip: string;
  problems: string[];
} {
  const p = e.SAGA_SERVICE_PREFIX;
  const subjects = e.NATS_SERVICE_SUBJECTS?.trim() || `${p}.>`;
  const events = e.NATS_SERVICE_EVENTS?.trim() || `${p}.events.>`;
  const routerSkip = e.NATS_SERVICE_ROUTER_SKIP ?? `${p}.events.OrderCreatedEvent`;
  const problems: string[] = [];
  const consumed = [`${p}.inventory.changed`, `${p}.events.OrderCreatedEvent`];
  const outside = consumed.filter((subject) => !subjectMatches(subjects, subject));
  if (outside.length > 0) {
    problems.push(
      `NATS_SERVICE_SUBJECTS: '${subjects}' does not cover ${outside.map((x) => `'${x}'`).join(' and ')}, which the services consume under SAGA_SERVICE_PREFIX '${p}' (set NATS_SERVICE_SUBJECTS to '${p}.>' or leave it unset to derive it)`,
    );
  }
  return { subjects, events, routerSkip, problems };
}

/** Parses the environment once; a bad value throws an INVALID_CONFIG error naming the variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConcordError(ErrorCode.InvalidConfig, `invalid configuration: ${problems.join('; ')}`, { problems });
  }
  const e = parsed.data;
  const saga = sagaDurations(e);
  const credentials = e.CREDENTIALS_KEYS === undefined ? undefined : parseCredentialKeys(e.CREDENTIALS_KEYS);
  const quotas = parseTenantQuotas(e.TENANT_QUOTAS);
  let rateLimits: Record<string, RateLimit | null> = {};
  const rateProblems: string[] = [];
  try {
    rateLimits = parseRateLimits(e.RATE_LIMITS);
  } catch (err) {
    rateProblems.push(`RATE_LIMITS: ${(err as Error).message}`);
  }
  const service = serviceSubjects(e);
  const problems = [...saga.problems, ...(credentials?.problems ?? []), ...rateProblems, ...quotas.problems, ...service.problems];
  if (problems.length > 0) {
    throw new ConcordError(ErrorCode.InvalidConfig, `invalid configuration: ${problems.join('; ')}`, { problems });
  }
  return Object.freeze({
    databaseUrl: e.DATABASE_URL,
    natsUrl: e.NATS_URL,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    dataDir: e.DATA_DIR,
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    dbPoolSize: e.DB_POOL_SIZE,
    actorCacheSize: e.ACTOR_CACHE_SIZE,
    actorLiveSize: e.ACTOR_LIVE_SIZE,
    actorIdleMs: e.ACTOR_IDLE_MS,
    commitBatchMax: e.COMMIT_BATCH_MAX,
    commitConcurrency: e.COMMIT_CONCURRENCY,
    commitFair: e.COMMIT_FAIR,
    admissionLimit: e.ADMISSION_LIMIT,
    partitions: e.PARTITIONS,
    timerPollMs: e.TIMER_POLL_MS,
    timerClaimMs: e.TIMER_CLAIM_MS,
    outboxBatch: e.OUTBOX_BATCH,
    outboxPollMs: e.OUTBOX_POLL_MS,
    inboxRetentionHours: e.INBOX_RETENTION_HOURS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    tracing: { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME },
    connectorCallTimeoutMs: e.CONNECTOR_CALL_TIMEOUT_MS,
    inventoryPollMs: e.INVENTORY_POLL_MS,
    jwtSecret: e.JWT_SECRET,
    tenantQuotas: quotas.quotas,
    credentialsKeys: credentials ? Object.freeze(credentials.keys) : undefined,
    nats: Object.freeze({
      prefix: e.NATS_PREFIX,
      replicas: e.NATS_REPLICAS,
      maxAgeMs: e.NATS_MAX_AGE_HOURS * 3_600_000,
      duplicateWindowMs: e.NATS_DUPLICATE_WINDOW_MS,
      ackWaitMs: e.NATS_ACK_WAIT_MS,
      maxAckPending: e.NATS_MAX_ACK_PENDING,
      maxAttempts: e.NATS_MAX_ATTEMPTS,
      retryBackoffMs: e.NATS_RETRY_BACKOFF_MS,
      publishTimeoutMs: e.NATS_PUBLISH_TIMEOUT_MS,
      serviceSubjects: service.subjects,
      serviceEvents: service.events,
      routerSkip: Object.freeze(service.routerSkip.split(',').map((x) => x.trim()).filter(Boolean)),
    }),
    events: Object.freeze({
      maxAttempts: e.EVENT_MAX_ATTEMPTS,
      retryBackoffMs: e.EVENT_RETRY_BACKOFF_MS,
      retryMaxMs: e.EVENT_RETRY_MAX_MS,
      maxPayloadBytes: e.EVENT_MAX_PAYLOAD_BYTES,
      batch: e.EVENT_DELIVERY_BATCH,
      pollMs: e.EVENT_DELIVERY_POLL_MS,
      leaseMs: e.EVENT_DELIVERY_LEASE_MS,
      webhookTimeoutMs: e.WEBHOOK_TIMEOUT_MS,
      allowPrivateTargets: e.WEBHOOK_ALLOW_PRIVATE_TARGETS,
    }),
    saga: Object.freeze({
      servicePrefix: e.SAGA_SERVICE_PREFIX,
      orderTimeout: e.SAGA_ORDER_TIMEOUT,
      stepTimeouts: Object.freeze(saga.stepTimeouts),
      retryMaxAttempts: e.SAGA_RETRY_MAX_ATTEMPTS,
      retryInitialInterval: e.SAGA_RETRY_INITIAL_INTERVAL,
      retryMultiplier: e.SAGA_RETRY_MULTIPLIER,
      retryMaxInterval: e.SAGA_RETRY_MAX_INTERVAL,
      compensationTimeout: e.SAGA_COMPENSATION_TIMEOUT,
      compensationMaxRetries: e.SAGA_COMPENSATION_MAX_RETRIES,
      stuckAfterMs: e.SAGA_STUCK_AFTER_MINUTES * 60_000,
      stuckDegradedAbove: e.SAGA_STUCK_DEGRADED_ABOVE,
    }),
    providers: Object.freeze({
      publicBaseUrl: (e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, ''),
      shopify: Object.freeze({
        apiKey: e.SHOPIFY_API_KEY,
        apiSecret: e.SHOPIFY_API_SECRET,
        webhookSecret: e.SHOPIFY_WEBHOOK_SECRET ?? e.SHOPIFY_API_SECRET,
        apiVersion: e.SHOPIFY_API_VERSION,
        shopUrlTemplate: e.SHOPIFY_SHOP_URL_TEMPLATE,
      }),
      mercadolibre: Object.freeze({
        clientId: e.ML_CLIENT_ID,
        clientSecret: e.ML_CLIENT_SECRET,
        webhookSecret: e.ML_WEBHOOK_SECRET,
        apiBaseUrl: e.ML_API_BASE_URL.replace(/\/+$/, ''),
        authBaseUrl: e.ML_AUTH_BASE_URL?.replace(/\/+$/, ''),
      }),
    }),
    outbound: Object.freeze({
      rateLimits: Object.freeze(rateLimits),
      maxAttempts: e.OUTBOUND_MAX_ATTEMPTS,
      retryInitialMs: e.OUTBOUND_RETRY_INITIAL_MS,
      retryMaxMs: e.OUTBOUND_RETRY_MAX_MS,
      retryJitter: e.OUTBOUND_RETRY_JITTER,
      breakerThreshold: e.BREAKER_FAILURE_THRESHOLD,
      breakerCooldownMs: e.BREAKER_COOLDOWN_MS,
      alertErrorRate: e.OUTBOUND_ALERT_ERROR_RATE,
      alertWindowMs: e.OUTBOUND_ALERT_WINDOW_MS,
      alertMinCalls: e.OUTBOUND_ALERT_MIN_CALLS,
      statsWindowMs: e.OUTBOUND_STATS_WINDOW_MS,
    }),
    ecosystem: Object.freeze({
      tiersFile: e.ECOSYSTEM_TIERS_FILE,
      templatesDir: e.ECOSYSTEM_TEMPLATES_DIR,
      rotationDays: e.ECOSYSTEM_ROTATION_DAYS,
      usageFlushMs: e.ECOSYSTEM_USAGE_FLUSH_MS,
    }),
  });
}

/** The variables and their meaning, for `--help` and the README. */
export const CONFIG_VARIABLES = Object.keys(EnvSchema.shape);
