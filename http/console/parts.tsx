import type { ChartLayout } from './chart.js';

/** A state value as paths: `{ active: 'open' }` reads `active.open`; parallel regions are listed. */
export function statePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix ? `${prefix}.${value}` : value];
  if (value && typeof value === 'object') {
    const out: string[] = [];
    for (const [k, v] of Object.entries(value)) {
      const p = prefix ? `${prefix}.${k}` : k;
      const sub = statePaths(v, p);
      out.push(...(sub.length ? sub : [p]));
    }
    return out;
  }
  return [];
}

export const stateText = (value: unknown) => statePaths(value).join(', ') || '(none)';

/** A table's header row: one column header per name. */
export function Head(props: { cols: string[] }) {
  return (
    <thead>
      <tr>
        {props.cols.map((c) => (
          <th scope="col">{c}</th>
        ))}
      </tr>
    </thead>
  );
}

export function Json(props: { value: unknown; label?: string }) {
  return (
    <pre class="json" tabindex={0} aria-label={props.label}>
      {JSON.stringify(props.value, null, 2)}
    </pre>
  );
}

export function Time(props: { at: string | null | undefined }) {
  if (!props.at) return <span class="muted">—</span>;
  return <time datetime={props.at}>{props.at.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')}</time>;
}

const pointsOf = (pts: Array<{ x: number; y: number }>) => pts.map((p, i) => `${i ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');

/**
 * The statechart as SVG: every state a `<g data-state="path">`, the active leaf states
 * `aria-current="true"` (their active ancestors are marked `active`), transitions drawn along
 * ELK's routes with their events as labels (all events in a `<title>`).
 */
export function Chart(props: { layout: ChartLayout; machineId: string; value: unknown }) {
  const { layout } = props;
  const active = new Set<string>();
  const leaves = new Set(statePaths(props.value));
  for (const p of leaves) {
    const parts = p.split('.');
    for (let i = 1; i <= parts.length; i++) active.add(parts.slice(0, i).join('.'));
  }
  const current = [...leaves].join(', ');
  return (
    <figure class="chart">
      <div class="chart-scroll" tabindex={0} role="region" aria-label="Statechart, scrollable">
        <svg xmlns="http://www.w3.org/2000/svg" class="statechart" viewBox={`0 0 ${layout.width} ${layout.height}`} width={layout.width} height={layout.height} role="img" aria-labelledby="chart-title">
          <title id="chart-title">{`Statechart of ${props.machineId}; current state ${current}`}</title>
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
            </marker>
          </defs>
          {layout.states.map((s) => {
            const isLeafNow = leaves.has(s.path);
            const cls = ['state', s.type, s.compound ? 'compound' : 'leaf', isLeafNow ? 'current' : active.has(s.path) ? 'active' : '', s.initial ? 'initial' : ''].filter(Boolean).join(' ');
            return (
              <g class={cls} data-state={s.path} aria-current={isLeafNow ? 'true' : undefined}>
                <rect x={s.x} y={s.y} width={s.width} height={s.height} rx={s.compound ? 10 : 18} />
                {s.initial ? <circle cx={s.x + 8} cy={s.y + 8} r={4} class="initial-dot" /> : null}
                <text x={s.compound ? s.x + 14 : s.x + s.width / 2} y={s.compound ? s.y + 22 : s.y + s.height / 2 + 4} text-anchor={s.compound ? 'start' : 'middle'} class="state-name">
                  {s.key}
                  {s.type === 'parallel' ? ' (parallel)' : ''}
                </text>
              </g>
            );
          })}
          {layout.edges.map((e) => (
            <g class="transition" data-source={e.source} data-target={e.target}>
              <title>{e.events.join(', ')}</title>
              {e.points.length > 1 ? <path d={pointsOf(e.points)} marker-end="url(#arrow)" /> : null}
              {e.labelAt ? (
                <text x={e.labelAt.x + 3} y={e.labelAt.y + e.labelAt.height - 4} class="edge-label">
                  {e.label}
                </text>
              ) : null}
            </g>
          ))}
        </svg>
      </div>
      <figcaption>
        Current state: <strong class="current-state">{current || '(none)'}</strong>
        {layout.global.length ? (
          <span class="muted">
            {' '}
            · handled in every state: {layout.global.slice(0, 6).join(', ')}
            {layout.global.length > 6 ? ` +${layout.global.length - 6} more` : ''}
          </span>
        ) : null}
      </figcaption>
    </figure>
  );
}
