import { Hono, type Context } from 'hono';
import type { Child } from 'hono/jsx';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { EXECUTION_TYPE } from '../../machines/playbook/index.js';
import type { Clock } from '../../runtime/clock.js';
import { isConcordError } from '../../runtime/errors.js';
import type { Logger } from '../../runtime/logger.js';
import { DomainCode, DomainError } from '../../services/common/errors.js';
import type { ConsoleFilter } from '../../services/operators/console.js';
import { chartOf } from '../../services/operators/inspector.js';
import { verifyToken } from '../auth/jwt.js';
import { toProblem } from '../problem.js';
import { ASSETS } from './assets.js';
import { layoutChart } from './chart.js';
import { Layout, type Section } from './layout.js';
import { ActorPage, actorPath, JournalItems, LiveDetails, LiveState, type ActorPageData } from './pages/actor.js';
import { ActorsPage, DeadLetterRow, DeadLettersPage, ErrorPage, ExecutionPage, ExecutionsPage, IntegrationsPage, LoginPage, TimersPage, type ExecutionListRow, type ExecutionRow, type IntegrationGroup } from './pages/lists.js';
import { stateText } from './parts.js';
import { checkLoginNonce, clearSession, consoleSession, loginNonce, sameOrigin, setSession, type ConsoleEnv } from './session.js';

export interface ConsoleOptions {
  /** The HS256 secret the API verifies bearer tokens with: the console verifies its cookie the same way. */
  secret: string;
  clock: Clock;
  log: Logger;
}

/** No inline script or style anywhere: everything the page runs or wears comes from /console/assets. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const JOURNAL_SHOWN = 50;
const SEARCH_LIMIT = 50;

const Text = (max: number) => z.string().trim().max(max).regex(/^\P{Cc}*$/u, 'no control characters').optional().transform((v) => (v ? v : undefined));
const SearchQuery = z.object({
  type: Text(63),
  status: Text(100),
  state: Text(500),
  tenant: Text(200),
  id: Text(200),
  paused: z.enum(['', 'true', 'false']).optional(),
});
const PositiveId = z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

function valid<T>(schema: z.ZodType<T>, value: unknown, target: string): T {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new DomainError(DomainCode.ValidationFailed, `invalid ${target}`, { target, issues: r.error.issues.map((i) => ({ path: i.path.map(String), code: i.code, message: i.message })) });
  }
  return r.data;
}

async function html(c: Context, node: Child, status = 200): Promise<Response> {
  const body = await (node as { toString(): string | Promise<string> }).toString();
  return c.html(body, status as 200);
}

/** A whole page: doctype, shell, navigation. */
async function page(c: Context<ConsoleEnv>, title: string, section: Section, body: Child, status = 200): Promise<Response> {
  const csrf = c.get('csrf') as string | undefined;
  const who = (c.get('principal') as { sub: string } | undefined)?.sub;
  const shell = (
    <Layout title={title} section={section} csrf={csrf} who={who}>
      {body}
    </Layout>
  );
  return c.html(`<!doctype html>${await shell.toString()}`, status as 200);
}

/** Who acts and the request id, for a service call (console actions carry no Idempotency-Key). */
const cx = (c: Context<ConsoleEnv>) => ({ principal: c.get('principal'), requestId: c.get('requestId'), idempotency: null });

const form = async (c: Context): Promise<Record<string, string>> => {
  const body = await c.req.parseBody();
  return Object.fromEntries(Object.entries(body).filter((e): e is [string, string] => typeof e[1] === 'string'));
};

const Flash = (props: { children: Child }) => (
  <p class="flash ok" role="status">
    {props.children}
  </p>
);

/**
 * The operator console, served by Concord itself under `/console`: server-rendered pages
 * (hono/jsx), htmx for actions and Server-Sent Events for live pages, all from this server (no
 * CDN, no build step). Signed in with an operator token kept in an HttpOnly, SameSite=Strict
 * cookie that only /console reads: the API still wants its bearer header. Every action goes
 * through the same services as the API's operator routes (same checks, same audit records).
 */
export function consoleRoutes(o: ConsoleOptions): Hono<ConsoleEnv> {
  const app = new Hono<ConsoleEnv>();

  app.use('*', async (c, next) => {
    await next();
    c.res.headers.set('content-security-policy', CONSOLE_CSP);
    c.res.headers.set('x-content-type-options', 'nosniff');
    c.res.headers.set('x-frame-options', 'DENY');
    c.res.headers.set('referrer-policy', 'same-origin');
    c.res.headers.set('cross-origin-opener-policy', 'same-origin');
    if (!c.res.headers.has('cache-control')) c.res.headers.set('cache-control', 'no-store');
  });

  app.get('/assets/:name', (c) => {
    const a = Object.hasOwn(ASSETS, c.req.param('name')) ? ASSETS[c.req.param('name')] : undefined;
    if (!a) throw new DomainError(DomainCode.RouteNotFound, `no console asset ${c.req.param('name')}`);
    const versioned = c.req.query('v') === a.hash;
    return c.body(new Uint8Array(a.body), 200, { 'content-type': a.type, 'cache-control': versioned ? 'public, max-age=31536000, immutable' : 'public, max-age=300' });
  });

  app.use('*', sameOrigin());

  const safeNext = (next: string | undefined) => (next && /^\/console\/[^\\]*$/.test(next) && !next.startsWith('//') ? next : '/console/actors');

  app.get('/login', (c) => page(c, 'Sign in', 'login', <LoginPage nonce={loginNonce(c)} next={safeNext(c.req.query('next'))} />));

  app.post('/login', async (c) => {
    const f = await form(c);
    checkLoginNonce(c, f._csrf);
    const next = safeNext(f.next);
    const again = (error: string, status: number) => page(c, 'Sign in', 'login', <LoginPage nonce={loginNonce(c)} next={next} error={error} />, status);
    const token = (f.token ?? '').trim();
    if (!token) return again('Paste a token.', 400);
    let p;
    try {
      p = verifyToken(token, o.secret, o.clock.now());
    } catch (err) {
      return again(`That token is not valid: ${isConcordError(err) ? err.message : 'unreadable'}.`, 401);
    }
    // the console is the operator surface: other roles are told so, not let in
    if (p.role !== 'operator') return again('The console is for operator tokens.', 403);
    setSession(c, token, p.exp, o.clock.now());
    o.log.info({ sub: p.sub }, 'console sign-in');
    return c.redirect(next, 303);
  });

  app.use('*', consoleSession(o.secret, o.clock));

  app.post('/logout', (c) => {
    clearSession(c);
    return c.redirect('/console/login', 303);
  });

  app.get('/', (c) => c.redirect('/console/actors', 303));

  app.get('/actors', async (c) => {
    const q = valid(SearchQuery, c.req.query(), 'query');
    const s = c.get('services');
    const filter: ConsoleFilter = { type: q.type, status: q.status, state: q.state, tenant: q.tenant, id: q.id, paused: q.paused ? q.paused === 'true' : undefined };
    const result = await s.console.search(filter, SEARCH_LIMIT);
    return page(c, 'Actors', 'actors', <ActorsPage filter={filter} types={s.runtime.host.registry.types()} result={result} limit={SEARCH_LIMIT} />);
  });

  async function actorData(c: Context<ConsoleEnv>, type: string, id: string): Promise<ActorPageData> {
    const s = c.get('services');
    const view = await s.actors.view(type, id); // NOT_FOUND for an undeployed type or an unknown actor
    const def = s.runtime.host.registry.get(type);
    const [layout, history, timers] = await Promise.all([
      layoutChart(`${type}@${def.version}`, chartOf(def.machine, undefined)),
      s.actors.history(type, id, Math.max(0, view.version - JOURNAL_SHOWN), JOURNAL_SHOWN),
      s.console.timersOf({ type, id }),
    ]);
    return { view, machineId: def.machine.id, layout, journal: history.data, olderEntries: view.version > JOURNAL_SHOWN, timers };
  }

  app.get('/actors/:type/:id', async (c) => {
    const { type, id } = c.req.param();
    const data = await actorData(c, type, id);
    return page(c, `${type}/${id}`, 'actors', <ActorPage {...data} />);
  });

  // the live page: after each change of version or pause mark, the new journal entries and the new state
  app.get('/actors/:type/:id/live', async (c) => {
    const { type, id } = c.req.param();
    const s = c.get('services');
    const after = valid(z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0), c.req.query('after'), 'query');
    const paused = c.req.query('paused') === '1';
    await s.actors.view(type, id); // a 404 before the stream starts
    return streamSSE(c, async (stream) => {
      let last = after;
      let chain = Promise.resolve();
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const push = async () => {
        const data = await actorData(c, type, id);
        const fresh = (await s.actors.history(type, id, last, 100)).data;
        if (fresh.length) await stream.writeSSE({ event: 'journal', data: await (<JournalItems type={type} id={id} entries={fresh} />).toString() });
        await stream.writeSSE({ event: 'state', data: await (<LiveState {...data} />).toString() });
        await stream.writeSSE({ event: 'details', data: await (<LiveDetails {...data} />).toString() });
        last = Math.max(last, data.view.version, fresh[fresh.length - 1]?.version ?? 0);
      };
      const unwatch = s.watch.watch(
        { type, id },
        { version: after, paused },
        () => {
          chain = chain.then(push).catch((err: unknown) => {
            o.log.warn({ err, type, id }, 'console live update failed');
            finish();
          });
        },
        () => finish(),
      );
      stream.onAbort(() => finish());
      // a comment line now and then keeps proxies from closing an idle stream
      const beat = setInterval(() => void stream.write(': keep-alive\n\n').catch(() => finish()), 15_000);
      await finished;
      clearInterval(beat);
      unwatch();
    });
  });

  app.post('/actors/:type/:id/send', async (c) => {
    const ref = c.req.param();
    const f = await form(c);
    const event = valid(z.string().min(1).max(200).regex(/^(?!xstate\.)/, 'must not start with "xstate."'), f.event, 'event');
    let payload: Record<string, unknown> = {};
    if (f.payload?.trim()) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(f.payload);
      } catch {
        throw new DomainError(DomainCode.ValidationFailed, 'the payload is not valid JSON', { issues: [{ path: ['payload'], message: 'not JSON' }] });
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new DomainError(DomainCode.ValidationFailed, 'the payload must be a JSON object', { issues: [{ path: ['payload'], message: 'an object' }] });
      payload = parsed as Record<string, unknown>;
    }
    const r = await c.get('services').operators.send({ ...cx(c), reason: f.reason ?? '' }, { type: ref.type!, id: ref.id! }, { ...payload, type: event });
    return html(
      c,
      <Flash>
        Sent <code>{event}</code>: now <strong>{stateText(r.value)}</strong> ({r.status}), version {r.version}.
      </Flash>,
    );
  });

  for (const action of ['pause', 'resume'] as const) {
    app.post(`/actors/:type/:id/${action}`, async (c) => {
      const { type, id } = c.req.param() as { type: string; id: string };
      const f = await form(c);
      const r = await c.get('services').operators[action]({ ...cx(c), reason: f.reason ?? '' }, { type, id });
      const what = action === 'pause' ? 'Paused' : 'Resumed';
      return html(c, <Flash>{r.changed ? `${what} ${type}/${id}.` : `${type}/${id} already was ${action === 'pause' ? 'paused' : 'running'}: nothing changed.`}</Flash>);
    });
  }

  app.post('/actors/:type/:id/retry', async (c) => {
    const { type, id } = c.req.param() as { type: string; id: string };
    const f = await form(c);
    const step = valid(z.string().trim().min(1).max(200).optional(), f.step || undefined, 'step');
    const r = await c.get('services').operators.retry({ ...cx(c), reason: f.reason ?? '' }, { type, id }, step);
    return html(
      c,
      <Flash>
        Retried step {r.step.name ?? r.step.id}: now <strong>{stateText(r.value)}</strong> ({r.status}), version {r.version}.
      </Flash>,
    );
  });

  app.post('/actors/:type/:id/fork', async (c) => {
    const { type, id } = c.req.param() as { type: string; id: string };
    const f = await form(c);
    const version = valid(PositiveId, f.version, 'version');
    const r = await c.get('services').operators.fork({ ...cx(c), reason: f.reason ?? '' }, { type, id }, version);
    return html(
      c,
      <Flash>
        Forked from v{version}: <a href={actorPath(r.type, r.id)}>{`${r.type}/${r.id}`}</a> ({stateText(r.value)}).
      </Flash>,
    );
  });

  app.get('/timers', async (c) => {
    const q = valid(z.object({ type: Text(63) }), c.req.query(), 'query');
    const s = c.get('services');
    const r = await s.timers.list({ type: q.type, limit: 100 });
    return page(c, 'Timers', 'timers', <TimersPage timers={r.data} types={s.runtime.host.registry.types()} type={q.type} />);
  });

  for (const action of ['fire', 'cancel'] as const) {
    app.post(`/timers/:id/${action}`, async (c) => {
      const id = valid(PositiveId, c.req.param('id'), 'path');
      const f = await form(c);
      const t = await c.get('services').timers[action]({ ...cx(c), reason: f.reason ?? '' }, id);
      return html(
        c,
        <Flash>
          {action === 'fire' ? 'Due now, firing: ' : 'Cancelled: '}
          <code>{t.event}</code> of <a href={actorPath(t.actorType, t.actorId)}>{`${t.actorType}/${t.actorId}`}</a>.
        </Flash>,
      );
    });
  }

  app.get('/dead-letters', async (c) => {
    const q = valid(z.object({ reason: Text(50), includeReplayed: z.enum(['true', 'false']).optional() }), c.req.query(), 'query');
    const includeReplayed = q.includeReplayed === 'true';
    const r = await c.get('services').deadLetters.list({ reason: q.reason, includeReplayed, afterId: 0, limit: 100 });
    return page(c, 'Dead letters', 'dead-letters', <DeadLettersPage letters={r.data} includeReplayed={includeReplayed} reason={q.reason} />);
  });

  app.post('/dead-letters/:id/replay', async (c) => {
    const id = valid(PositiveId, c.req.param('id'), 'path');
    const f = await form(c);
    let payload: unknown;
    if (f.payload !== undefined) {
      try {
        payload = JSON.parse(f.payload);
      } catch {
        throw new DomainError(DomainCode.ValidationFailed, 'the edited payload is not valid JSON', { issues: [{ path: ['payload'], message: 'not JSON' }] });
      }
    }
    const d = await c.get('services').deadLetters.replay({ ...cx(c), reason: f.reason ?? '' }, id, payload);
    return html(c, <DeadLetterRow d={d} />);
  });

  // playbook executions (their own actors): the list, and one with every step's log
  const executionActor = (c: Context<ConsoleEnv>) => (c.get('services').runtime.host.registry.has(EXECUTION_TYPE) ? EXECUTION_TYPE : null);
  app.get('/executions', async (c) => {
    const r = await c.get('services').playbooks.listExecutions(c.get('principal'), { limit: 100 });
    return page(c, 'Playbook executions', 'executions', <ExecutionsPage executions={r.data as unknown as ExecutionListRow[]} actorType={executionActor(c)} />);
  });
  app.get('/executions/:id', async (c) => {
    const e = await c.get('services').playbooks.getExecution(c.get('principal'), c.req.param('id'));
    return page(c, `Execution ${e.id}`, 'executions', <ExecutionPage e={e as unknown as ExecutionRow} actorType={executionActor(c)} />);
  });

  app.get('/integrations', async (c) => {
    const s = c.get('services');
    const groups: IntegrationGroup[] = [];
    if (s.runtime.host.registry.has('integration')) {
      const found = await s.console.search({ type: 'integration' }, 500);
      const byKey = new Map<string, IntegrationGroup>();
      for (const r of found.rows) {
        // a connection's id is <tenant>:<provider>:<account>
        const [tenant = r.tenant ?? '', provider = ''] = r.id.split(':');
        const key = `${tenant}\u0000${provider}`;
        const g = byKey.get(key) ?? { tenant, provider, actors: [], status: { connections: [] } };
        g.actors.push({ id: r.id, status: r.status, value: r.value });
        byKey.set(key, g);
      }
      for (const g of byKey.values()) {
        try {
          const st = await s.integrations.status(c.get('principal'), g.provider, g.tenant);
          g.status = { connections: st.connections as unknown as Array<Record<string, unknown>> };
        } catch (err) {
          g.status = { error: isConcordError(err) ? err.message : 'the status could not be read' };
        }
        groups.push(g);
      }
    }
    return page(c, 'Integrations', 'integrations', <IntegrationsPage groups={groups} />);
  });

  app.all('*', (c) => {
    throw new DomainError(DomainCode.RouteNotFound, `no console page ${c.req.path}`);
  });

  // errors as HTML: a fragment for htmx (shown where the answer goes), else a page; same statuses as the API's problems
  app.onError(async (err, c) => {
    const requestId = c.get('requestId') ?? '';
    const p = toProblem(err, requestId, c.req.path);
    if (p.status >= 500) (c.get('log') ?? o.log).error({ err, reqId: requestId }, 'console error');
    if (c.req.header('hx-request')) {
      const issues = Array.isArray(p.issues) ? (p.issues as Array<{ path?: string[]; message?: string }>) : [];
      // whatever the action's own target (a table row, say), the error goes to the page's message area
      c.header('hx-retarget', '#flash');
      c.header('hx-reswap', 'innerHTML');
      return html(
        c,
        <p class="flash error" role="alert" data-code={p.code}>
          {p.status} {p.title}: {p.detail}
          {issues.length ? ` (${issues.map((i) => `${(i.path ?? []).join('.')}: ${i.message ?? ''}`).join('; ')})` : ''}
        </p>,
        p.status,
      );
    }
    return page(c, p.title, 'error', <ErrorPage status={p.status} title={p.title} detail={p.detail} requestId={requestId} />, p.status);
  });
  return app;
}
