-- Operator actions on actors (issue 20) and the stable SQL views operators query in psql.

-- A paused actor applies nothing: the commit statement writes no transition of an actor whose
-- `paused_at` is set, so a pause taken in one process stops transitions in every process.
-- Nullable columns without a default: adding them rewrites nothing. Transitions never change
-- them, so the partial index below keeps transitions HOT updates.
ALTER TABLE actors
  ADD COLUMN paused_at     timestamptz,
  ADD COLUMN paused_by     text,
  ADD COLUMN paused_reason text,
  -- set on an actor made by `fork`: {"type", "id", "version"} of the journal entry it was forked from
  ADD COLUMN forked_from   jsonb;
CREATE INDEX actors_paused ON actors (paused_at) WHERE paused_at IS NOT NULL;

-- Why an operator acted (every operator action takes a reason).
ALTER TABLE audit_log ADD COLUMN reason text;

-- The views below are a stable interface: columns are only ever added at the end, never
-- renamed or dropped (test/runtime/ops-views.test.ts pins them).

-- Every actor with its state, status and pause/fork marks.
CREATE VIEW ops_actors AS
SELECT a.type, a.id, a.tenant, a.status, a.state_value, a.version, a.machine_version, a.attrs,
       a.paused_at IS NOT NULL AS paused, a.paused_at, a.paused_by, a.paused_reason,
       a.forked_from, a.created_at, a.updated_at
  FROM actors a;

-- Every applied event, with the state it led to.
CREATE VIEW ops_journal AS
SELECT j.actor_type, j.actor_id, j.version, j.kind, j.event->>'type' AS event_type, j.event,
       j.target_path, j.state_value, j.message_id, j.at
  FROM journal j;

-- Pending timers; `actor_paused` ones wait for a resume.
CREATE VIEW ops_timers AS
SELECT t.id, t.actor_type, t.actor_id, t.timer_key, t.event->>'type' AS event_type, t.event,
       t.target_path, t.due_at, t.claimed_until,
       EXISTS (SELECT 1 FROM actors a WHERE a.type = t.actor_type AND a.id = t.actor_id AND a.paused_at IS NOT NULL) AS actor_paused
  FROM timers t;

-- What the relay has not carried out yet, per partition: how much and how old.
CREATE VIEW ops_outbox_lag AS
SELECT o.partition, count(*)::int AS pending, min(o.created_at) AS oldest_at,
       now() - min(o.created_at) AS lag, max(o.attempts) AS max_attempts,
       count(*) FILTER (WHERE o.attempts > 0)::int AS retrying
  FROM outbox o
 GROUP BY o.partition;

-- Messages that exhausted their retries (or could never be applied), replayed or not.
CREATE VIEW ops_dead_letters AS
SELECT d.id, d.origin, d.reason, d.subject, d.actor_type, d.actor_id, d.message_id, d.error,
       d.attempts, d.payload, d.created_at, d.replayed_at, d.replayed_at IS NULL AS open
  FROM dead_letters d;

-- Message ids each actor has applied (the dedupe record), with the version they led to.
CREATE VIEW ops_inbox AS
SELECT i.actor_type, i.actor_id, i.message_id, i.version, i.created_at
  FROM inbox i;
