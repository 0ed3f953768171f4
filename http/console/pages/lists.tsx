import type { PendingTimer } from '../../../runtime/control.js';
import type { DeadLetter } from '../../../runtime/dead-letters.js';
import type { ConsoleFilter, ConsoleSearch } from '../../../services/operators/console.js';
import { CSRF_FIELD } from '../session.js';
import { Head, Json, stateText, Time } from '../parts.js';
import { actorPath } from './actor.js';

export function LoginPage(props: { nonce: string; next: string; error?: string }) {
  return (
    <section class="login panel" aria-labelledby="login-h">
      <h1 id="login-h">Sign in</h1>
      <p>
        Paste an operator token (<code>npm run -s token -- --role operator</code>). It is kept in an HttpOnly cookie for this console only; the API still needs its bearer header.
      </p>
      {props.error ? (
        <p class="flash error" role="alert">
          {props.error}
        </p>
      ) : null}
      <form method="post" action="/console/login">
        <input type="hidden" name={CSRF_FIELD} value={props.nonce} />
        <input type="hidden" name="next" value={props.next} />
        <label for="token">Operator token</label>
        <input id="token" name="token" type="password" autocomplete="off" required />
        <button type="submit">Sign in</button>
      </form>
    </section>
  );
}

const qs = (f: Record<string, string | undefined>) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
};

export function ActorsPage(props: { filter: ConsoleFilter; types: string[]; result: ConsoleSearch; limit: number }) {
  const f = props.filter;
  const base = { type: f.type, status: f.status, state: f.state, tenant: f.tenant, id: f.id, paused: f.paused === undefined ? undefined : String(f.paused) };
  return (
    <>
      <h1>Actors</h1>
      <form class="search panel" method="get" action="/console/actors" role="search" aria-label="Search actors">
        <div class="fields">
          <div>
            <label for="f-type">Type</label>
            <select id="f-type" name="type">
              <option value="">any</option>
              {props.types.map((t) => (
                <option value={t} selected={f.type === t}>
                  {t}
                </option>
              ))}
            </select>
          </div>
          <div>
            <label for="f-status">Status</label>
            <input id="f-status" name="status" value={f.status ?? ''} />
          </div>
          <div>
            <label for="f-state">State path</label>
            <input id="f-state" name="state" value={f.state ?? ''} placeholder="active.open" />
          </div>
          <div>
            <label for="f-tenant">Tenant</label>
            <input id="f-tenant" name="tenant" value={f.tenant ?? ''} />
          </div>
          <div>
            <label for="f-id">Id (prefix)</label>
            <input id="f-id" name="id" value={f.id ?? ''} />
          </div>
          <div>
            <label for="f-paused">Inbox</label>
            <select id="f-paused" name="paused">
              <option value="">any</option>
              <option value="true" selected={f.paused === true}>
                paused
              </option>
              <option value="false" selected={f.paused === false}>
                processing
              </option>
            </select>
          </div>
        </div>
        <button type="submit">Search</button>
      </form>
      <div class="columns">
        <section class="panel counts" aria-labelledby="counts-h">
          <h2 id="counts-h">
            Counts <span class="muted">({props.result.capped ? `more than ${props.result.total - 1}` : props.result.total} matching)</span>
          </h2>
          <table>
            <Head cols={['Type', 'Status', 'Actors']} />
            <tbody>
              {props.result.counts.map((c) => (
                <tr>
                  <td>{c.type}</td>
                  <td>
                    <a href={`/console/actors${qs({ ...base, type: c.type, status: c.status })}`}>{c.status}</a>
                  </td>
                  <td class="num">{c.n}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
        <section class="panel results" aria-labelledby="results-h">
          <h2 id="results-h">
            {props.result.order === 'recent' ? 'Most recently changed' : 'By type and id'} <span class="muted">(first {Math.min(props.limit, props.result.rows.length)})</span>
          </h2>
          {props.result.order === 'key' ? <p class="muted small">Too many matches to sort by last change: narrow the filter to see the most recent first.</p> : null}
          {props.result.capped ? <p class="muted small">Counted up to the first {props.result.total - 1} matches (the state and id filters have no index).</p> : null}
          {props.result.rows.length === 0 ? (
            <p>No actor matches.</p>
          ) : (
            <table>
              <Head cols={['Actor', 'Status', 'State', 'Tenant', 'Version', 'Changed']} />
              <tbody>
                {props.result.rows.map((r) => (
                  <tr data-actor={`${r.type}/${r.id}`}>
                    <td>
                      <a href={actorPath(r.type, r.id)}>
                        <span class="muted">{r.type}/</span>
                        {r.id}
                      </a>
                      {r.paused ? <span class="badge paused">paused</span> : null}
                    </td>
                    <td>{r.status}</td>
                    <td>{stateText(r.value)}</td>
                    <td>{r.tenant ?? '—'}</td>
                    <td class="num">{r.version}</td>
                    <td>
                      <Time at={r.updatedAt} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
    </>
  );
}

export function DeadLetterRow(props: { d: DeadLetter }) {
  const d = props.d;
  return (
    <tr data-dead-letter={d.id} class={d.replayedAt ? 'replayed' : ''}>
      <td class="num">{d.id}</td>
      <td>
        <span class="badge">{d.reason}</span>
        <div class="muted">{d.origin}</div>
      </td>
      <td>
        {d.actorType && d.actorId ? (
          <a href={actorPath(d.actorType, d.actorId)}>
            {d.actorType}/{d.actorId}
          </a>
        ) : (
          <span class="muted">—</span>
        )}
        <div class="muted small">{d.subject}</div>
      </td>
      <td>
        {d.error}
        <div class="muted small">{d.attempts} attempts</div>
      </td>
      <td>
        <details>
          <summary>Payload</summary>
          <Json value={d.payload} label={`Payload of dead letter ${d.id}`} />
          {d.replayedAt ? null : (
            <div class="edit-payload">
              <label for={`payload-${d.id}`}>Edited payload (JSON), replayed instead</label>
              <textarea id={`payload-${d.id}`} name="payload" rows={4} spellcheck={false}>
                {JSON.stringify(d.payload, null, 2)}
              </textarea>
              <button type="button" data-replay-edited={d.id} hx-post={`/console/dead-letters/${d.id}/replay`} hx-include={`#act-fields, #payload-${d.id}`} hx-target="closest tr" hx-swap="outerHTML" hx-confirm={`Replay dead letter ${d.id} with the edited payload?`}>
                Replay edited
              </button>
            </div>
          )}
        </details>
      </td>
      <td>
        <Time at={d.createdAt} />
      </td>
      <td>
        {d.replayedAt ? (
          <span class="badge running">
            replayed <Time at={d.replayedAt} />
          </span>
        ) : (
          <button type="button" data-replay={d.id} hx-post={`/console/dead-letters/${d.id}/replay`} hx-include="#act-fields" hx-target="closest tr" hx-swap="outerHTML" hx-confirm={`Replay dead letter ${d.id} through the outbox?`}>
            Replay
          </button>
        )}
      </td>
    </tr>
  );
}

export function DeadLettersPage(props: { letters: DeadLetter[]; includeReplayed: boolean; reason?: string }) {
  return (
    <>
      <h1>Dead letters</h1>
      <form class="search panel inline" method="get" action="/console/dead-letters" aria-label="Filter dead letters">
        <label for="dl-reason">Reason</label>
        <select id="dl-reason" name="reason">
          <option value="">any</option>
          {['rejected', 'unroutable', 'invalid', 'failed'].map((r) => (
            <option value={r} selected={props.reason === r}>
              {r}
            </option>
          ))}
        </select>
        <label for="dl-all">
          <input id="dl-all" type="checkbox" name="includeReplayed" value="true" checked={props.includeReplayed} /> include replayed
        </label>
        <button type="submit">Filter</button>
      </form>
      <div id="flash" role="status" aria-live="polite"></div>
      <section id="act-fields" class="panel act">
        <label for="reason">Reason for a replay (required)</label>
        <input id="reason" name="reason" type="text" maxlength={1000} aria-required="true" autocomplete="off" />
      </section>
      {props.letters.length === 0 ? (
        <p>No dead letters.</p>
      ) : (
        <table class="panel">
          <Head cols={['Id', 'Reason', 'Actor and subject', 'Error', 'Payload', 'Dead since', 'Replay']} />
          <tbody>
            {props.letters.map((d) => (
              <DeadLetterRow d={d} />
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function TimersPage(props: { timers: PendingTimer[]; types: string[]; type?: string }) {
  return (
    <>
      <h1>Pending timers</h1>
      <form class="search panel inline" method="get" action="/console/timers" aria-label="Filter timers">
        <label for="t-type">Type</label>
        <select id="t-type" name="type">
          <option value="">any</option>
          {props.types.map((t) => (
            <option value={t} selected={props.type === t}>
              {t}
            </option>
          ))}
        </select>
        <button type="submit">Filter</button>
      </form>
      <div id="flash" role="status" aria-live="polite"></div>
      <section id="act-fields" class="panel act">
        <label for="reason">Reason for fire or cancel (required)</label>
        <input id="reason" name="reason" type="text" maxlength={1000} aria-required="true" autocomplete="off" />
      </section>
      {props.timers.length === 0 ? (
        <p>No pending timers.</p>
      ) : (
        <table class="panel">
          <Head cols={['Actor', 'Event', 'Due', 'Actions']} />
          <tbody>
            {props.timers.map((t) => (
              <tr data-timer={t.id}>
                <td>
                  <a href={actorPath(t.actorType, t.actorId)}>
                    {t.actorType}/{t.actorId}
                  </a>
                  {t.actorPaused ? <span class="badge paused">paused</span> : null}
                </td>
                <td>
                  <code>{t.event}</code>
                </td>
                <td>
                  <Time at={t.dueAt} />
                </td>
                <td class="row-actions">
                  <button type="button" hx-post={`/console/timers/${t.id}/fire`} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Fire timer ${t.event} now?`}>
                    Fire now
                  </button>
                  <button type="button" class="danger" hx-post={`/console/timers/${t.id}/cancel`} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Cancel timer ${t.event}?`}>
                    Cancel
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export interface IntegrationGroup {
  tenant: string;
  provider: string;
  actors: Array<{ id: string; status: string; value: unknown }>;
  /** `GET /api/integrations/:service/status` for this tenant, or why it could not be read. */
  status: { connections: Array<Record<string, unknown>> } | { error: string };
}

const SHOWN = new Set(['connectionId', 'provider', 'account', 'state', 'tokenExpiresAt', 'scopes', 'webhookSubscriptions', 'lastWebhook', 'connectedAt', 'lastRefreshAt', 'lastError', 'outbound']);

/** The outbound door's figures of a connection (`outbound` in the status route), when it has them. */
interface Outbound {
  budget?: { limit?: string; usedInWindow?: number; throttledCalls?: number; windowSeconds?: number; scope?: string };
  breaker?: { state?: string; consecutiveFailures?: number; openedAt?: string | null };
  errorRate?: number;
  averageResponseMs?: number | null;
  health?: string;
  deadLetters?: number;
}

function OutboundFacts(props: { o: Outbound }) {
  const { budget, breaker } = props.o;
  return (
    <>
      {budget ? (
        <div data-field="budget">
          <dt>Budget</dt>
          <dd>
            {budget.limit ?? 'none'} · {budget.usedInWindow ?? 0} used{budget.windowSeconds ? ` in ${budget.windowSeconds} s` : ''} · {budget.throttledCalls ?? 0} throttled
            {budget.scope ? <span class="muted"> (per {budget.scope})</span> : null}
          </dd>
        </div>
      ) : null}
      {breaker ? (
        <div data-field="breaker">
          <dt>Breaker</dt>
          <dd>
            <span class={`badge ${breaker.state === 'closed' ? 'running' : breaker.state === 'open' ? 'failed' : 'paused'}`}>{breaker.state ?? '?'}</span> {breaker.consecutiveFailures ?? 0} consecutive failures
            {breaker.openedAt ? (
              <>
                , open since <Time at={breaker.openedAt} />
              </>
            ) : null}
          </dd>
        </div>
      ) : null}
      {props.o.errorRate !== undefined ? (
        <div data-field="errorRate">
          <dt>Errors (5 min)</dt>
          <dd>
            {(props.o.errorRate * 100).toFixed(1)}%{props.o.health ? ` · ${props.o.health}` : ''}
          </dd>
        </div>
      ) : null}
      {props.o.averageResponseMs !== undefined ? (
        <div data-field="averageResponseMs">
          <dt>Avg response</dt>
          <dd>{props.o.averageResponseMs === null ? '—' : `${Math.round(props.o.averageResponseMs)} ms`}</dd>
        </div>
      ) : null}
      {props.o.deadLetters !== undefined ? (
        <div data-field="deadLetters">
          <dt>Dead letters</dt>
          <dd>
            <a href="/console/dead-letters">{props.o.deadLetters}</a>
          </dd>
        </div>
      ) : null}
    </>
  );
}

export function IntegrationsPage(props: { groups: IntegrationGroup[] }) {
  return (
    <>
      <h1>Integrations</h1>
      {props.groups.length === 0 ? (
        <p>
          No marketplace connections yet. Integrations registered in the partner registry are listed by <code>GET /api/v1/ecosystem/integrations</code>; each is an actor of type{' '}
          <a href="/console/actors?type=ecosystem">ecosystem</a>.
        </p>
      ) : null}
      {props.groups.map((g) => (
        <section class="panel integration" aria-label={`${g.provider} connections of ${g.tenant}`}>
          <h2>
            {g.provider} <span class="muted">· tenant {g.tenant}</span>
          </h2>
          {'error' in g.status ? (
            <p class="flash error">{g.status.error}</p>
          ) : (
            g.status.connections.map((c) => {
              const extra = Object.entries(c).filter(([k]) => !SHOWN.has(k));
              return (
                <div class="connection" data-connection={String(c.connectionId ?? '')}>
                  <dl class="facts">
                    <div>
                      <dt>Connection</dt>
                      <dd>
                        <a href={actorPath('integration', String(c.connectionId ?? ''))}>{String(c.account ?? c.connectionId ?? '')}</a>
                      </dd>
                    </div>
                    <div>
                      <dt>State</dt>
                      <dd>
                        <span class="badge">{String(c.state ?? '')}</span>
                      </dd>
                    </div>
                    <div>
                      <dt>Token expires</dt>
                      <dd>
                        <Time at={c.tokenExpiresAt as string | null} />
                      </dd>
                    </div>
                    <div>
                      <dt>Last webhook</dt>
                      <dd>{c.lastWebhook ? <Json value={c.lastWebhook} label="Last webhook" /> : '—'}</dd>
                    </div>
                    <div>
                      <dt>Last error</dt>
                      <dd>{c.lastError ? <Json value={c.lastError} label="Last error" /> : '—'}</dd>
                    </div>
                    {c.outbound && typeof c.outbound === 'object' ? <OutboundFacts o={c.outbound as Outbound} /> : null}
                    {/* anything else the status route gives */}
                    {extra.map(([k, v]) => (
                      <div data-field={k}>
                        <dt>{k}</dt>
                        <dd>{v !== null && typeof v === 'object' ? <Json value={v} label={k} /> : String(v)}</dd>
                      </div>
                    ))}
                  </dl>
                </div>
              );
            })
          )}
        </section>
      ))}
    </>
  );
}

export function ErrorPage(props: { status: number; title: string; detail: string; requestId: string }) {
  return (
    <section class="panel" aria-labelledby="err-h">
      <h1 id="err-h">
        {props.status} {props.title}
      </h1>
      <p>{props.detail}</p>
      <p class="muted">Request id {props.requestId}</p>
      <p>
        <a href="/console/actors">Back to actors</a>
      </p>
    </section>
  );
}

/** A playbook step that has ended, in the words of the execution API (and the step engine's). */
const DONE_STEP = new Set(['succeeded', 'skipped', 'failed', 'cancelled', 'COMPLETED', 'SKIPPED', 'FAILED', 'CANCELLED']);

export interface ExecutionRow {
  id: string;
  playbookId: string;
  playbookName: string;
  playbookVersion: number;
  tenantId: string | null;
  status: string;
  trigger: string;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  steps: Array<{
    id: string;
    phase: string;
    type: string;
    status: string;
    dependsOn: string[];
    attempts: number;
    startedAt: string | null;
    completedAt: string | null;
    error: { code: string | null; message: string } | null;
    logs: Array<{ at: string; attempt: number; message: string; fields?: Record<string, unknown> }>;
  }>;
}

/** A line of the executions list: the step counts instead of the steps. */
export type ExecutionListRow = Omit<ExecutionRow, 'steps'> & { stepCounts: Record<string, number> & { total: number } };

export function ExecutionsPage(props: { executions: ExecutionListRow[]; actorType: string | null }) {
  return (
    <>
      <h1>Playbook executions</h1>
      {props.executions.length === 0 ? (
        <p>No executions yet.</p>
      ) : (
        <table class="panel">
          <Head cols={['Execution', 'Playbook', 'Status', 'Trigger', 'Steps done', 'Started']} />
          <tbody>
            {props.executions.map((e) => (
              <tr data-execution={e.id}>
                <td>
                  <a href={`/console/executions/${encodeURIComponent(e.id)}`}>{e.id}</a>
                </td>
                <td>
                  {e.playbookName} <span class="muted">v{e.playbookVersion}</span>
                </td>
                <td>
                  <span class="badge">{e.status}</span>
                </td>
                <td>{e.trigger}</td>
                <td class="num">
                  {Object.entries(e.stepCounts).reduce((n, [k, v]) => (DONE_STEP.has(k) ? n + v : n), 0)}/{e.stepCounts.total}
                </td>
                <td>
                  <Time at={e.startedAt ?? e.createdAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function ExecutionPage(props: { e: ExecutionRow; actorType: string | null }) {
  const { e } = props;
  return (
    <>
      <h1>
        <span class="muted">execution/</span>
        {e.id}
      </h1>
      <dl class="facts">
        <div>
          <dt>Playbook</dt>
          <dd>
            {e.playbookName} v{e.playbookVersion}
          </dd>
        </div>
        <div>
          <dt>Status</dt>
          <dd>{e.status}</dd>
        </div>
        <div>
          <dt>Trigger</dt>
          <dd>{e.trigger}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>
            <Time at={e.startedAt} />
          </dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>
            <Time at={e.finishedAt} />
          </dd>
        </div>
        {props.actorType ? (
          <div>
            <dt>Actor</dt>
            <dd>
              <a href={actorPath(props.actorType, e.id)}>statechart and journal</a>
            </dd>
          </div>
        ) : null}
      </dl>
      {e.error ? <p class="flash error">{e.error}</p> : null}
      {e.steps.map((s) => (
        <section class="panel" aria-label={`Step ${s.id}`} data-step={s.id}>
          <h2>
            {s.id} <span class="muted">({s.type}{s.phase === 'finally' ? ', finally' : ''})</span> <span class="badge">{s.status}</span>
          </h2>
          <p class="muted small">
            {s.attempts} attempts{s.dependsOn.length ? ` · after ${s.dependsOn.join(', ')}` : ''}
          </p>
          {s.error ? <p class="flash error">{`${s.error.code ?? 'ERROR'}: ${s.error.message}`}</p> : null}
          {s.logs.length ? (
            <ol class="logs">
              {s.logs.map((l) => (
                <li>
                  <Time at={l.at} /> <span class="muted">#{l.attempt}</span> {l.message}
                  {l.fields ? <code class="small"> {JSON.stringify(l.fields)}</code> : null}
                </li>
              ))}
            </ol>
          ) : (
            <p class="muted small">No log lines.</p>
          )}
        </section>
      ))}
    </>
  );
}
