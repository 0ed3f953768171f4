-- The OpenTelemetry trace id of the transition that wrote each journal entry (null when tracing
-- was off), so an operator can go from an entry of an actor's history to its trace.
ALTER TABLE journal ADD COLUMN trace_id text;

-- Operators see it in plain psql too (a column added at the end, as the views promise).
CREATE OR REPLACE VIEW ops_journal AS
SELECT j.actor_type, j.actor_id, j.version, j.kind, j.event->>'type' AS event_type, j.event,
       j.target_path, j.state_value, j.message_id, j.at, j.trace_id
  FROM journal j;

-- The traceparent of the transition that set a timer: its firing continues that trace.
ALTER TABLE timers ADD COLUMN traceparent text;
