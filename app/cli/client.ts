import { CliError, Exit, type ExitCode } from './output.js';

/** What the CLI needs to reach a Concord server. */
export interface Target {
  url: string;
  token?: string;
}

/** The exit code of a problem answer: 404 not found, 409 conflict, 400/422 a request that cannot be valid, else failed. */
export function exitCodeOf(status: number): ExitCode {
  if (status === 404) return Exit.notFound;
  if (status === 409) return Exit.conflict;
  if (status === 400 || status === 422) return Exit.usage;
  return Exit.failed;
}

/**
 * A thin client over Concord's HTTP API: JSON in, JSON out, and any problem answer (RFC 9457)
 * turned into a `CliError` with the problem's detail and the matching exit code.
 */
export class ConcordClient {
  constructor(private readonly target: Target) {}

  async request<T = unknown>(method: string, path: string, body?: unknown, query?: Record<string, string | number | boolean | undefined>): Promise<T> {
    const url = new URL(path, this.target.url.endsWith('/') ? this.target.url : `${this.target.url}/`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.target.token) headers.authorization = `Bearer ${this.target.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(Exit.failed, `cannot reach ${this.target.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? (JSON.parse(text) as unknown) : null;
    } catch {
      parsed = text;
    }
    if (!res.ok) {
      const p = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
      const what = p ? [p.title, p.detail].filter(Boolean).join(': ') : `${res.status} ${res.statusText}`;
      const issues = Array.isArray(p?.issues) ? (p.issues as Array<{ path?: unknown[]; message?: string }>).map((i) => `${(i.path ?? []).join('.') || '(body)'}: ${i.message}`) : [];
      const hint = res.status === 401 ? ' (set --token or CONCORD_TOKEN)' : '';
      throw new CliError(exitCodeOf(res.status), `${what}${issues.length ? ` (${issues.join('; ')})` : ''}${hint}`, p);
    }
    return parsed as T;
  }
}
