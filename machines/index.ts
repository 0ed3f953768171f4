import type { ActorTypeDefinition } from './kit/actor-type.js';
import { ecosystemType } from './ecosystem/index.js';
import { integrationType } from './integration/index.js';
import { syncType } from './integration/sync.js';
import { executionType, scheduleType } from './playbook/index.js';
import { relationshipType } from './relationship.js';
import { sagaType } from './saga/index.js';
import { workflowType } from './workflow/index.js';

/** Every actor type Concord runs. Add a machine module here to deploy it. */
export const actorTypes: ActorTypeDefinition[] = [relationshipType, sagaType, workflowType, integrationType, syncType, ecosystemType, executionType, scheduleType];
