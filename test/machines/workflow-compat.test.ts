import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { workflowMachine } from '../../machines/workflow/index.js';
import type { PersistedSnapshot } from '../../runtime/registry.js';
import { step } from '../../runtime/step.js';
import { deliveryOf, record, SCENARIOS, type Frame } from './workflow-scenarios.js';

/**
 * The workflow machine was one `reduce` behind a single action; it is now a chart of named
 * actions over `machines/steps/`. Machine version 1 is unchanged, so what version 1 persisted
 * must still load and behave the same: `fixtures/workflow-v1-traces.json` holds every frame
 * (snapshot as jsonb keeps it, effects, timers) the pre-split machine produced for each scenario.
 */
const traces = JSON.parse(readFileSync(new URL('./fixtures/workflow-v1-traces.json', import.meta.url), 'utf8')) as Partial<Record<keyof typeof SCENARIOS, Frame[]>>;
const idOf = (name: string) => (name === 'automatedRepliesTimeoutsAndRetries' ? 'auto' : `w-${name}`);

describe('workflow machine v1 compatibility (named actions vs the recorded reduce)', () => {
  for (const name of Object.keys(SCENARIOS) as Array<keyof typeof SCENARIOS>) {
    it(`${name}: the same snapshots, effects and timers, frame by frame`, () => {
      expect(record(workflowMachine, idOf(name), name)).toEqual(traces[name]);
    });

    it(`${name}: resumes from every snapshot the old machine persisted`, () => {
      const frames = traces[name]!;
      for (let i = 1; i < frames.length; i++) {
        const before = frames[i - 1]!;
        const out = step({
          machine: workflowMachine,
          snapshot: JSON.parse(JSON.stringify(before.snapshot)) as PersistedSnapshot,
          input: { id: idOf(name), tenant: null },
          timers: before.timers,
          deliver: deliveryOf(frames[i]!, before.timers),
          now: frames[i]!.now,
        });
        if ('rejected' in out) throw new Error(`frame ${i} rejected`);
        expect(JSON.parse(JSON.stringify({ snapshot: out.snapshot, effects: out.effects, timers: out.timers })), `frame ${i}`).toEqual({
          snapshot: frames[i]!.snapshot,
          effects: frames[i]!.effects,
          timers: frames[i]!.timers,
        });
      }
    });
  }
});
