import type { ActorTypeDefinition } from '../runtime/registry.js';

/** Every actor type Concord runs. Add a machine module here to deploy it. */
export const actorTypes: ActorTypeDefinition[] = [];
