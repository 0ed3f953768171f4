import ElkBundled from 'elkjs/lib/elk.bundled.js';
import type { ELK, ElkExtendedEdge, ElkNode } from 'elkjs/lib/elk-api.js';
import type { ChartNode } from '../../services/operators/inspector.js';

/** A state drawn on the chart, in absolute SVG coordinates. */
export interface LaidState {
  /** The XState node id, e.g. `relationship.active.open`. */
  id: string;
  /** The state path without the machine id (`active.open`): the `data-state` of the node. */
  path: string;
  key: string;
  type: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** Has children drawn inside it. */
  compound: boolean;
  /** The initial state of its parent. */
  initial: boolean;
}

/** A transition (all events that share a source and a target), routed by ELK. */
export interface LaidEdge {
  id: string;
  source: string;
  target: string;
  events: string[];
  label: string;
  points: Array<{ x: number; y: number }>;
  labelAt: { x: number; y: number; width: number; height: number } | null;
}

export interface ChartLayout {
  width: number;
  height: number;
  states: LaidState[];
  edges: LaidEdge[];
  /** Events the machine handles in every state (drawn as a caption, not an arrow). */
  global: string[];
}

const CHAR_W = 7;
const LINE_H = 16;
const PAD = 16;

/** `xstate.after.sagaTimeout.saga.running` reads `after sagaTimeout`. */
export function eventLabel(event: string): string {
  const m = /^xstate\.after\.([^.]+)\./.exec(event);
  if (!m) return event;
  return /^\d+$/.test(m[1]!) ? `after ${m[1]} ms` : `after ${m[1]}`;
}

function labelOf(events: string[]): string {
  const names = events.map(eventLabel);
  return names.length <= 2 ? names.join(', ') : `${names[0]} +${names.length - 1} more`;
}

// the bundled build runs ELK in this thread (no worker): a layout is computed once per machine version
const elk = new (ElkBundled as unknown as new () => ELK)();
const cache = new Map<string, Promise<ChartLayout>>();

/**
 * The chart's layout: ELK's layered algorithm over the whole hierarchy at once
 * (`hierarchyHandling: INCLUDE_CHILDREN`), so transitions between nesting levels are routed,
 * compound and parallel states enclose their children, and labels get room. Computed once per
 * machine type and version (a layout costs milliseconds to tens of milliseconds; a page must not).
 */
export function layoutChart(key: string, chart: ChartNode): Promise<ChartLayout> {
  let p = cache.get(key);
  if (!p) {
    p = computeLayout(chart);
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

async function computeLayout(root: ChartNode): Promise<ChartLayout> {
  const initialIds = new Set<string>();
  const groups = new Map<string, { source: string; target: string; events: string[] }>();
  const global: string[] = [];
  const ids = new Set<string>();
  const collect = (n: ChartNode) => {
    ids.add(n.id);
    if (n.initial) initialIds.add(`${n.id}.${n.initial}`);
    n.states.forEach(collect);
  };
  collect(root);
  const edgesOf = (n: ChartNode) => {
    for (const t of n.transitions) {
      if (n.id === root.id || t.target === root.id || !ids.has(t.target)) {
        if (n.id === root.id && !global.includes(t.event)) global.push(t.event);
        continue;
      }
      const k = `${n.id}->${t.target}`;
      const g = groups.get(k) ?? { source: n.id, target: t.target, events: [] };
      if (!g.events.includes(t.event)) g.events.push(t.event);
      groups.set(k, g);
    }
    n.states.forEach(edgesOf);
  };
  edgesOf(root);

  const toElk = (n: ChartNode): ElkNode => {
    const title = n.key.length * CHAR_W + 2 * PAD;
    if (n.states.length === 0) return { id: n.id, width: Math.max(90, title), height: 40 };
    return {
      id: n.id,
      // room for the compound state's own name above its children
      layoutOptions: { 'elk.padding': `[top=${LINE_H + 18},left=14,bottom=14,right=14]`, 'elk.nodeSize.minimum': `(${title}, 60)`, 'elk.nodeSize.constraints': 'MINIMUM_SIZE' },
      children: n.states.map(toElk),
    };
  };
  const edges: ElkExtendedEdge[] = [...groups.values()].map((g, i) => {
    const label = labelOf(g.events);
    return { id: `e${i}`, sources: [g.source], targets: [g.target], labels: [{ id: `e${i}l`, text: label, width: label.length * CHAR_W * 0.86 + 6, height: LINE_H }] };
  });
  const graph: ElkNode = {
    id: '__root',
    layoutOptions: {
      'elk.algorithm': 'layered',
      'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
      'elk.direction': 'DOWN',
      'elk.edgeRouting': 'ORTHOGONAL',
      'elk.layered.spacing.nodeNodeBetweenLayers': '48',
      'elk.spacing.nodeNode': '24',
      'elk.spacing.edgeLabel': '4',
      'elk.edgeLabels.placement': 'CENTER',
      'elk.json.shapeCoords': 'ROOT',
      'elk.json.edgeCoords': 'ROOT',
      'elk.padding': '[top=12,left=12,bottom=12,right=12]',
    },
    children: root.states.map(toElk),
    edges,
  };
  const out = await elk.layout(graph);

  const states: LaidState[] = [];
  const byId = new Map<string, ChartNode>();
  const index = (n: ChartNode) => {
    byId.set(n.id, n);
    n.states.forEach(index);
  };
  index(root);
  const walk = (e: ElkNode) => {
    for (const c of e.children ?? []) {
      const n = byId.get(c.id)!;
      states.push({
        id: n.id,
        path: n.id.slice(root.id.length + 1),
        key: n.key,
        type: n.type,
        x: c.x ?? 0,
        y: c.y ?? 0,
        width: c.width ?? 0,
        height: c.height ?? 0,
        compound: n.states.length > 0,
        initial: initialIds.has(n.id),
      });
      walk(c);
    }
  };
  walk(out);
  const groupList = [...groups.values()];
  const laidEdges: LaidEdge[] = (out.edges ?? []).map((e: ElkExtendedEdge, i: number) => {
    const g = groupList[i]!;
    const s = e.sections?.[0];
    const points = s ? [s.startPoint, ...(s.bendPoints ?? []), s.endPoint] : [];
    const l = e.labels?.[0];
    return {
      id: e.id,
      source: g.source,
      target: g.target,
      events: g.events,
      label: labelOf(g.events),
      points,
      labelAt: l && l.x !== undefined && l.y !== undefined ? { x: l.x, y: l.y, width: l.width ?? 0, height: l.height ?? 0 } : null,
    };
  });
  return { width: Math.ceil(out.width ?? 0), height: Math.ceil(out.height ?? 0), states, edges: laidEdges, global };
}
