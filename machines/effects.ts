/**
 * The effects a machine may emit. Machines do no I/O: they `emit(...)` one of these, the
 * runtime stores it in the outbox in the same transaction as the new snapshot, and carries it
 * out after commit, at least once, with an idempotency key (`<type>/<id>@<version>#<n>`).
 *
 * Timers are not effects: use `after` and delayed `raise`/`sendTo`; the runtime makes them
 * durable.
 */
export type ConcordEffect =
  /** Publish `data` on a subject (NATS when configured; in-process subscribers otherwise). */
  | {
      type: 'concord.publish';
      subject: string;
      data: unknown;
      headers?: Record<string, string>;
      /**
       * The message id receivers dedupe on (`Nats-Msg-Id`), when the contract names one (e.g. a
       * saga command's `commandId`). Must be unique per message; defaults to the outbox key.
       */
      messageId?: string;
    }
  /** Send an event to another actor, addressed by type and id. */
  | { type: 'concord.send'; to: { type: string; id: string }; event: { type: string; [k: string]: unknown } }
  /** Call a connector operation; the outcome comes back to this actor as an event. */
  | { type: 'concord.call'; connector: string; operation: string; input: unknown; replyTo?: string }
  /**
   * Route service events carrying this correlation id (e.g. a command id) to this actor.
   * Registered in the same transaction as the transition that emits it.
   */
  | { type: 'concord.correlate'; id: string };

export const publish = (subject: string, data: unknown, opts: { headers?: Record<string, string>; messageId?: string } = {}): ConcordEffect => ({
  type: 'concord.publish',
  subject,
  data,
  ...(opts.headers ? { headers: opts.headers } : {}),
  ...(opts.messageId ? { messageId: opts.messageId } : {}),
});

export const sendToActor = (to: { type: string; id: string }, event: { type: string; [k: string]: unknown }): ConcordEffect => ({
  type: 'concord.send',
  to,
  event,
});

export const callConnector = (connector: string, operation: string, input: unknown): ConcordEffect => ({
  type: 'concord.call',
  connector,
  operation,
  input,
});

export const correlate = (id: string): ConcordEffect => ({ type: 'concord.correlate', id });
