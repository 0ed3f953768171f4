import type { ActorTypeDefinition } from '../runtime/registry.js';
import { relationshipType } from './relationship.js';
import { sagaType } from './saga.js';
import { workflowType } from './workflow.js';

/** Every actor type Concord runs. Add a machine module here to deploy it. */
export const actorTypes: ActorTypeDefinition[] = [relationshipType, sagaType, workflowType];
