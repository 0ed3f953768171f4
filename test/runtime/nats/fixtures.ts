import { assign, emit, enqueueActions, setup } from 'xstate';
import type { ActorTypeDefinition, PersistedSnapshot } from '../../../runtime/registry.js';

/**
 * `tally` records every applied message as `<source>:<seq>`, so a test sees loss,
 * duplication and reordering per source. It can fan messages out to other tallies (through
 * the outbox and the relay), wait on a correlation id, and be closed (then it rejects adds).
 */
export type TallyEvent =
  | { type: 'tally.add'; seq: number; source: string; sentAt?: number; poison?: boolean }
  | { type: 'tally.fanout'; to: string[]; seq: number }
  | { type: 'tally.wait'; correlationId: string }
  | { type: 'svc.reply'; value: string }
  | { type: 'Pong' }
  | { type: 'tally.close' };

export interface TallyContext {
  id: string;
  entries: string[];
}

type Emitted =
  | { type: 'concord.send'; to: { type: string; id: string }; event: { type: string; [k: string]: unknown } }
  | { type: 'concord.correlate'; id: string };

export const tallyMachine = setup({
  types: {
    context: {} as TallyContext,
    events: {} as TallyEvent,
    input: {} as { id: string; tenant: string | null },
    emitted: {} as Emitted,
  },
}).createMachine({
  id: 'tally',
  context: ({ input }) => ({ id: input.id, entries: [] }),
  initial: 'open',
  states: {
    open: {
      on: {
        'tally.add': { actions: assign({ entries: ({ context, event }) => [...context.entries, `${event.source}:${event.seq}`] }) },
        'tally.fanout': {
          actions: enqueueActions(({ context, event, enqueue }) => {
            for (const to of event.to) {
              enqueue.emit({ type: 'concord.send', to: { type: 'tally', id: to }, event: { type: 'tally.add', seq: event.seq, source: context.id } });
            }
          }),
        },
        'tally.wait': { actions: emit(({ event }) => ({ type: 'concord.correlate' as const, id: event.correlationId })) },
        'svc.reply': { actions: assign({ entries: ({ context, event }) => [...context.entries, `reply:${event.value}`] }) },
        Pong: { actions: assign({ entries: ({ context }) => [...context.entries, 'pong'] }) },
        'tally.close': 'closed',
      },
    },
    closed: {},
  },
});

export const tallyType: ActorTypeDefinition = {
  type: 'tally',
  machine: tallyMachine,
  version: 1,
  project: (s: PersistedSnapshot) => ({
    status: typeof s.value === 'string' ? s.value.toUpperCase() : 'UNKNOWN',
    attrs: { n: (s.context as unknown as TallyContext).entries.length },
  }),
};
