-- The OpenTelemetry trace id of the transition that wrote each journal entry (null when tracing
-- was off), so an operator can go from an entry of an actor's history to its trace.
ALTER TABLE journal ADD COLUMN trace_id text;
