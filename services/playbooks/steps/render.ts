import { renderTemplate } from './liquid.js';
import type { StepScope } from './types.js';

/**
 * Renders the Liquid in a step's spec: every string that holds `{{` or `{%` is rendered over
 * the scope (with the same limits as a template step); other values pass through. So
 * `body: { text: "{{ steps.message.output }}" }` sends the message's text. Runners render their
 * own specs; the engine hands them over as written.
 */
export async function renderSpec<T>(value: T, scope: StepScope, signal?: AbortSignal, depth = 0): Promise<T> {
  if (depth > 32) return value;
  if (typeof value === 'string') return (/\{\{|\{%/.test(value) ? await renderTemplate(value, scope, signal ? { signal } : {}) : value) as T;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    for (const v of value) out.push(await renderSpec(v, scope, signal, depth + 1));
    return out as T;
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await renderSpec(v, scope, signal, depth + 1);
    return out as T;
  }
  return value;
}
