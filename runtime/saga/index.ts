import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { Runtime } from '../runtime.js';
import { SagaService } from './service.js';

export { SagaIntake } from './intake.js';
export { registerSagaMetrics } from './metrics.js';
export { SagaService, SAGA_ACTOR, statusView } from './service.js';

const services = new WeakMap<Runtime, SagaService>();

/** The saga service of a runtime (one per runtime, shared by the routes, metrics and intake). */
export function sagasOf(runtime: Runtime, clock: Clock = systemClock): SagaService {
  let s = services.get(runtime);
  if (!s) {
    s = new SagaService(runtime.host, runtime.database.pool, runtime.config, clock);
    services.set(runtime, s);
  }
  return s;
}
