import { z } from 'zod';
import { isDuration } from '../../machines/lib/duration.js';
import { ON_ERROR } from '../../machines/playbook/types.js';
import { STEP_TYPES } from './steps/types.js';

/**
 * The playbook format (YAML or JSON), as one zod schema: what `POST /api/partnerships/playbooks`
 * validates and what `GET /api/partnerships/playbooks/schema` publishes as JSON Schema. Rules
 * that a schema cannot state (exactly one type key, the dependsOn graph, cron syntax, CEL and
 * Liquid syntax) are checked in `validate.ts` and reported the same way, with line and column.
 */

const Id = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, 'a letter, then up to 63 letters, digits, _ or -');
const Duration = z.string().refine(isDuration, 'an ISO 8601 duration such as PT30S, PT5M or P1D').meta({ format: 'duration' });

export const INPUT_TYPES = ['string', 'number', 'integer', 'boolean', 'object', 'array'] as const;

const Input = z.strictObject({
  type: z.enum(INPUT_TYPES),
  default: z.unknown().optional(),
  required: z.boolean().optional().describe('Must be given (when there is no default)'),
  enum: z.array(z.union([z.string(), z.number(), z.boolean()])).max(100).optional(),
  description: z.string().max(2000).optional(),
});

const Cron = z.strictObject({
  schedule: z.string().min(1).max(200).describe('Five fields: minute hour day-of-month month day-of-week'),
  timezone: z.string().min(1).max(100).default('UTC').describe('IANA time zone, e.g. Europe/Berlin'),
  overlap: z.enum(['skip', 'queue', 'allow']).default('skip').describe('When a tick comes while an execution it started still runs'),
  catchUp: z.enum(['none', 'last', 'all']).default('none').describe('Ticks missed while Concord was down'),
  catchUpWindow: Duration.default('P1D').describe('Missed ticks older than this are not caught up'),
});

const Nats = z.strictObject({
  subject: z
    .string()
    .min(1)
    .max(200)
    .regex(/^(?:[A-Za-z0-9_-]+|\*)(?:\.(?:[A-Za-z0-9_-]+|\*))*(?:\.>)?$|^>$/, 'a NATS subject pattern (tokens, * and a final >)'),
});

export const Trigger = z
  .strictObject({
    manual: z.strictObject({}).optional(),
    cron: Cron.optional(),
    webhook: z.strictObject({}).optional(),
    nats: Nats.optional(),
  })
  .describe('Exactly one of manual, cron, webhook, nats');

const Retry = z.strictObject({
  maxAttempts: z.number().int().min(1).max(20).describe('Attempts in all, the first included'),
  backoff: z
    .strictObject({
      initial: Duration.default('PT1S'),
      factor: z.number().min(1).max(10).default(2),
      max: Duration.default('PT30S'),
    })
    .optional(),
  on: z.array(z.string().min(1).max(100)).max(50).optional().describe('Error codes worth a retry; all retryable errors when absent'),
});

const stepShape = {
  id: Id,
  name: z.string().max(200).optional(),
  description: z.string().max(2000).optional(),
  dependsOn: z.array(Id).max(100).optional(),
  if: z.string().min(1).max(2000).optional().describe('CEL over inputs and steps.<id>.output|status; false skips the step'),
  forEach: z.string().min(1).max(2000).optional().describe('CEL giving a list: the step runs once per item (item, index), its output is the list of outputs'),
  timeout: Duration.optional().describe('Per attempt; PT30S by default'),
  retry: Retry.optional(),
  onError: z.enum(ON_ERROR).optional().describe('retry (default: retry, then fail the execution), skip, abort or continue'),
  ...Object.fromEntries(STEP_TYPES.map((t) => [t, z.unknown().optional()])),
} as Record<string, z.ZodType>;

export const Step = z.strictObject(stepShape).describe(`Exactly one type key: ${STEP_TYPES.join(', ')}`);

export const Playbook = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 _.-]{0,199}$/, 'letters, digits, space, _ . -'),
  description: z.string().max(2000).optional(),
  inputs: z.record(Id, Input).optional(),
  triggers: z.array(Trigger).max(20).optional(),
  parallelism: z.number().int().min(1).max(50).optional().describe('Steps running at once (4 by default)'),
  steps: z.array(Step).min(1).max(200),
  finally: z.array(Step).max(50).optional().describe('Steps run after the others, whatever happened'),
});

export interface StepDef {
  id: string;
  name?: string;
  description?: string;
  dependsOn?: string[];
  if?: string;
  forEach?: string;
  timeout?: string;
  retry?: { maxAttempts: number; backoff?: { initial: string; factor: number; max: string }; on?: string[] };
  onError?: (typeof ON_ERROR)[number];
  [type: string]: unknown;
}

export interface InputDef {
  type: (typeof INPUT_TYPES)[number];
  default?: unknown;
  required?: boolean;
  enum?: Array<string | number | boolean>;
  description?: string;
}

export interface CronTrigger {
  schedule: string;
  timezone: string;
  overlap: 'skip' | 'queue' | 'allow';
  catchUp: 'none' | 'last' | 'all';
  catchUpWindow: string;
}

export interface TriggerDef {
  manual?: Record<string, never>;
  cron?: CronTrigger;
  webhook?: Record<string, never>;
  nats?: { subject: string };
}

/** A valid playbook, defaults filled in. */
export interface PlaybookDef {
  name: string;
  description?: string;
  inputs?: Record<string, InputDef>;
  triggers?: TriggerDef[];
  parallelism?: number;
  steps: StepDef[];
  finally?: StepDef[];
}

let published: unknown;

/** The JSON Schema of the format (draft 2020-12), built once. */
export function playbookJsonSchema(): unknown {
  published ??= {
    ...z.toJSONSchema(Playbook, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://concord.dev/schemas/playbook.json',
    title: 'Concord playbook',
  };
  return published;
}
