import { assign, emit, setup } from 'xstate';
import type { ActorTypeDefinition } from '../runtime/registry.js';

/** A small actor for benchmarks: counts events and emits one outbox message per event. */
export const benchMachine = setup({
  types: {
    context: {} as { id: string; n: number; last: number },
    events: {} as { type: 'bench.tick'; i: number },
    input: {} as { id: string },
  },
}).createMachine({
  id: 'bench',
  context: ({ input }) => ({ id: input.id, n: 0, last: 0 }),
  initial: 'running',
  states: {
    running: {
      on: {
        'bench.tick': {
          actions: [
            assign({ n: ({ context }) => context.n + 1, last: ({ event }) => event.i }),
            emit(({ context, event }) => ({ type: 'concord.publish' as const, subject: `bench.ticks.${context.id}`, data: { i: event.i } })),
          ],
        },
      },
    },
  },
});

export const benchType: ActorTypeDefinition = {
  type: 'bench',
  machine: benchMachine,
  version: 1,
  project: () => ({ status: 'RUNNING' }),
};
