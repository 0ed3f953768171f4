
export { SagaIntake } from './intake.js';
export { registerSagaMetrics } from './metrics.js';
export { SagaService, SAGA_ACTOR, statusView } from './service.js';

