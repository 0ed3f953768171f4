import type { PendingTimer } from '../../../runtime/control.js';
import type { ActorView } from '../../../runtime/actor-host.js';
import type { JournalEntry } from '../../../runtime/store.js';
import type { ChartLayout } from '../chart.js';
import { Chart, Head, Json, stateText, Time } from '../parts.js';

export interface ActorPageData {
  view: ActorView & { type: string; id: string };
  machineId: string;
  layout: ChartLayout;
  journal: JournalEntry[];
  /** The journal has older entries than those shown. */
  olderEntries: boolean;
  timers: PendingTimer[];
}

export const actorPath = (type: string, id: string) => `/console/actors/${encodeURIComponent(type)}/${encodeURIComponent(id)}`;

/** Steps of a saga or workflow (a `steps` array in its context), by where they are. */
type Step = { id?: string; name?: string; stepNumber?: number; status?: string; attempt?: number; retryCount?: number; startedAt?: string | null; completedAt?: string | null; errorMessage?: string | null; error?: { message?: string } | null };
const DONE = new Set(['COMPLETED', 'SKIPPED', 'COMPENSATED']);
const RUNNING = new Set(['IN_PROGRESS', 'RUNNING', 'COMPENSATING']);
const FAILED = new Set(['FAILED', 'CANCELLED', 'COMPENSATION_FAILED', 'TIMED_OUT']);
export const stepPhase = (status: string | undefined) => (!status ? 'remaining' : DONE.has(status) ? 'done' : RUNNING.has(status) ? 'running' : FAILED.has(status) ? 'failed' : 'remaining');

function Steps(props: { steps: Step[]; path: string }) {
  const phases = props.steps.map((s) => stepPhase(s.status));
  const count = (p: string) => phases.filter((x) => x === p).length;
  return (
    <section class="panel steps" aria-labelledby="steps-h">
      <h2 id="steps-h">Steps</h2>
      <p class="step-summary">
        <span class="phase done">{count('done')} done</span> · <span class="phase running">{count('running')} running</span> · <span class="phase remaining">{count('remaining')} remaining</span>
        {count('failed') ? (
          <>
            {' '}
            · <span class="phase failed">{count('failed')} failed</span>
          </>
        ) : null}
      </p>
      <table>
        <Head cols={['#', 'Step', 'Status', 'Attempts', 'Started', 'Completed', 'Error', 'Retry']} />
        <tbody>
          {props.steps.map((s, i) => (
            <tr class={`step ${phases[i]}`} data-step-phase={phases[i]}>
              <td>{s.stepNumber ?? i + 1}</td>
              <td>{s.name ?? ''}</td>
              <td>
                <span class={`badge ${phases[i]}`}>{s.status ?? ''}</span>
              </td>
              <td>{s.attempt ?? s.retryCount ?? ''}</td>
              <td>
                <Time at={s.startedAt} />
              </td>
              <td>
                <Time at={s.completedAt} />
              </td>
              <td>{s.errorMessage ?? s.error?.message ?? ''}</td>
              <td>
                {phases[i] === 'failed' && (s.id ?? s.name) ? (
                  <button type="button" data-retry-step={s.id ?? s.name} hx-post={`${props.path}/retry`} hx-vals={JSON.stringify({ step: s.id ?? s.name })} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Retry step ${s.name ?? s.id}?`}>
                    Retry
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

function Timers(props: { timers: PendingTimer[] }) {
  return (
    <section class="panel" aria-labelledby="timers-h">
      <h2 id="timers-h">Pending timers</h2>
      {props.timers.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <table>
          <Head cols={['Event', 'Due', 'Actions']} />
          <tbody>
            {props.timers.map((t) => (
              <tr data-timer={t.id}>
                <td>
                  <code>{t.event}</code>
                </td>
                <td>
                  <Time at={t.dueAt} />
                  {t.actorPaused ? <span class="muted"> (waits for resume)</span> : null}
                </td>
                <td class="row-actions">
                  <button type="button" hx-post={`/console/timers/${t.id}/fire`} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Fire timer ${t.event} now?`}>
                    Fire now
                  </button>
                  <button type="button" class="danger" hx-post={`/console/timers/${t.id}/cancel`} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Cancel timer ${t.event}? It will never fire.`}>
                    Cancel
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The run state, the chart and the events accepted now: swapped in whole over SSE (`state`) after every transition or pause. */
export function LiveState(props: ActorPageData) {
  const { view } = props;
  const path = actorPath(view.type, view.id);
  // a wildcard (`wfstep.*`) is how a machine listens, not an event one can send
  const accepts = view.accepts.filter((e) => !e.includes('*'));
  return (
    <div id="live-state-inner" data-version={view.version} data-paused={view.paused ? 'true' : 'false'}>
      <dl class="facts">
        <div>
          <dt>Status</dt>
          <dd class="status">{view.status}</dd>
        </div>
        <div>
          <dt>State</dt>
          <dd class="state-value">{stateText(view.value)}</dd>
        </div>
        <div>
          <dt>Version</dt>
          <dd class="version">{view.version}</dd>
        </div>
        <div>
          <dt>Tenant</dt>
          <dd>{view.tenant ?? '—'}</dd>
        </div>
        <div>
          <dt>Inbox</dt>
          <dd class="run-state">
            {view.paused ? (
              <span class="badge paused">
                paused by {view.paused.by} <Time at={view.paused.at} />
                {view.paused.reason ? `: ${view.paused.reason}` : ''}
              </span>
            ) : (
              <span class="badge running">processing</span>
            )}
          </dd>
        </div>
        {view.forkedFrom ? (
          <div>
            <dt>Forked from</dt>
            <dd>
              <a href={actorPath(view.forkedFrom.type, view.forkedFrom.id)}>
                {view.forkedFrom.type}/{view.forkedFrom.id}
              </a>{' '}
              at v{view.forkedFrom.version}
            </dd>
          </div>
        ) : null}
      </dl>
      <Chart layout={props.layout} machineId={props.machineId} value={view.value} />
      <section class="panel" aria-labelledby="accepts-h">
        <h2 id="accepts-h">Events it accepts now</h2>
        {accepts.length === 0 ? <p class="muted">None in this state.</p> : null}
        <div class="events">
          {accepts.map((e) => (
            <form hx-post={`${path}/send`} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Send ${e} to ${view.type}/${view.id}?`}>
              <input type="hidden" name="event" value={e} />
              <button type="submit" data-event={e} disabled={view.paused ? true : undefined}>
                {e}
              </button>
            </form>
          ))}
        </div>
        <div class="run-actions">
          {view.paused ? (
            <button type="button" data-action="resume" hx-post={`${path}/resume`} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Resume ${view.type}/${view.id}? What waited is applied in order.`}>
              Resume
            </button>
          ) : (
            <button type="button" data-action="pause" class="danger" hx-post={`${path}/pause`} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Pause ${view.type}/${view.id}? It applies nothing until resumed.`}>
              Pause
            </button>
          )}
        </div>
      </section>
    </div>
  );
}

/** Steps, timers and context: swapped in whole over SSE (`details`). */
export function LiveDetails(props: ActorPageData) {
  const { view } = props;
  const steps = Array.isArray((view.context as { steps?: unknown }).steps) ? ((view.context as { steps: Step[] }).steps as Step[]) : null;
  return (
    <div id="live-details-inner">
      {steps ? <Steps steps={steps} path={actorPath(view.type, view.id)} /> : null}
      <Timers timers={props.timers} />
      <section class="panel" aria-labelledby="context-h">
        <h2 id="context-h">Context</h2>
        <Json value={view.context} label="Actor context" />
      </section>
    </div>
  );
}

/** Journal entries as timeline items: the event, the state after it, when; fork from any of them. */
export function JournalItems(props: { type: string; id: string; entries: JournalEntry[] }) {
  const path = actorPath(props.type, props.id);
  return (
    <>
      {props.entries.map((e) => (
        <li class={`entry ${e.kind}`} data-version={e.version}>
          <span class="v">v{e.version}</span> <code class="ev">{String(e.event.type)}</code>
          {e.kind === 'timer' ? <span class="badge">timer</span> : null} <span aria-hidden="true">→</span> <span class="after">{stateText(e.value)}</span> <Time at={e.at} />
          {e.traceId ? (
            <span class="trace small muted" data-trace-id={e.traceId}>
              trace <code>{e.traceId}</code>
            </span>
          ) : null}
          <details>
            <summary>Event and fork</summary>
            <Json value={e.event} label={`Event of version ${e.version}`} />
            <button type="button" hx-post={`${path}/fork`} hx-vals={JSON.stringify({ version: e.version })} hx-include="#act-fields" hx-target="#flash" hx-confirm={`Fork a new actor from version ${e.version}?`}>
              Fork from v{e.version}
            </button>
          </details>
        </li>
      ))}
    </>
  );
}

export function ActorPage(props: ActorPageData) {
  const { view } = props;
  const path = actorPath(view.type, view.id);
  return (
    <>
      <h1>
        <span class="muted">{view.type}/</span>
        {view.id}
      </h1>
      <div id="flash" role="status" aria-live="polite"></div>
      <div class="actor-grid" hx-ext="sse" sse-connect={`${path}/live?after=${view.version}&paused=${view.paused ? 1 : 0}`}>
        <div class="actor-main">
          <div id="live-state" sse-swap="state" hx-swap="innerHTML">
            <LiveState {...props} />
          </div>
          <section id="act-fields" class="panel act" aria-labelledby="act-h">
            <h2 id="act-h">Why you act</h2>
            <p class="muted">The buttons above and below ask for confirmation; each action is audited with this reason.</p>
            <label for="reason">Reason (required)</label>
            <input id="reason" name="reason" type="text" maxlength={1000} aria-required="true" autocomplete="off" />
            <label for="payload">Event payload (JSON object, merged into the event; optional)</label>
            <textarea id="payload" name="payload" rows={3} spellcheck={false}></textarea>
            <details class="cli">
              <summary>The same from the CLI</summary>
              <pre tabindex={0} aria-label="CLI commands">
                {[
                  `npx concord actors send ${view.type} ${view.id} --event '{"type":"${view.accepts.find((e) => !e.includes('*')) ?? '<event>'}"}' --reason '<why>'`,
                  `npx concord actors ${view.paused ? 'resume' : 'pause'} ${view.type} ${view.id} --reason '<why>'`,
                  `npx concord actors history ${view.type} ${view.id}`,
                ].join('\n')}
              </pre>
            </details>
          </section>
          <div id="live-details" sse-swap="details" hx-swap="innerHTML">
            <LiveDetails {...props} />
          </div>
        </div>
        <section class="panel journal" aria-labelledby="journal-h">
          <h2 id="journal-h">Journal</h2>
          {props.olderEntries ? <p class="muted">Older entries: see the API's history route.</p> : null}
          <ol id="journal" sse-swap="journal" hx-swap="beforeend" aria-live="polite">
            <JournalItems type={view.type} id={view.id} entries={props.journal} />
          </ol>
        </section>
      </div>
    </>
  );
}
