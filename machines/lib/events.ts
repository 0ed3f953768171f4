/**
 * Where Concord's own events go: `<NATS_PREFIX>.events.<kind>`, the subjects the events stream
 * holds. The services put the configured root in the event that creates an actor (the saga's
 * plan, `relationship.create`, `workflow.create`), so the machines never assume a prefix.
 */
export const DEFAULT_EVENTS_ROOT = 'concord.events';

/** The root an actor publishes under; snapshots from before the root was recorded use the default. */
export const eventsRoot = (c: { events?: string | null | undefined }): string => c.events ?? DEFAULT_EVENTS_ROOT;
