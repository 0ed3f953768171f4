-- The partner registry's health monitor (services/ecosystem/monitor.ts) checks every active
-- integration at its tier's interval without a transition of its actor per check: the actor
-- hears of a check only when the status changes. The latest health of every integration
-- (last check, latency, consecutive failures, ...) is written here in bulk, one statement per
-- flush (ECOSYSTEM_USAGE_FLUSH_MS) for all the integrations checked since the last one.
--   health      the monitor's record (machines/ecosystem EcosystemHealth), newest check wins
--   checked_at  its lastCheckAt
CREATE TABLE ecosystem_health_latest (
  integration_id text        PRIMARY KEY,
  health         jsonb       NOT NULL,
  checked_at     timestamptz NOT NULL
);

-- version 1 of the ecosystem actor checked on its own timer; version 2 has none
DELETE FROM timers WHERE actor_type = 'ecosystem';

-- Usage analytics count the inventory sync's calls through the outbound door (also in `calls`)
-- and the events delivered to an integration, in memory like the rest, flushed in bulk.
ALTER TABLE ecosystem_usage_hourly
  ADD COLUMN sync_calls       bigint NOT NULL DEFAULT 0,
  ADD COLUMN events_delivered bigint NOT NULL DEFAULT 0;
