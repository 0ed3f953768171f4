-- Cross-integration events (the spec's CrossIntegrationEvent) and their per-target deliveries,
-- plus the HTTP endpoints integrations register to receive them. These are plain tables, not
-- actors: an event and its delivery rows are written in the transaction that answers 202, and
-- runtime/events/worker.ts carries the deliveries out.

CREATE TABLE cross_integration_events (
  id                     text        PRIMARY KEY,
  seq                    bigserial   UNIQUE,
  event_name             text        NOT NULL,
  source_integration_id  text        NOT NULL,
  target_integration_ids text[]      NOT NULL,
  payload                jsonb       NOT NULL,
  event_category         text        NOT NULL,
  priority               text        NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high', 'critical')),
  -- pending: deliveries outstanding; processed: every delivery delivered; failed: some are dead
  status                 text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'failed')),
  processed_at           timestamptz,
  error_message          text,
  metadata               jsonb,
  created_by             text        NOT NULL,
  created_at             timestamptz NOT NULL,
  updated_at             timestamptz NOT NULL
);
CREATE INDEX cross_integration_events_created ON cross_integration_events (created_at DESC, id DESC);
CREATE INDEX cross_integration_events_source ON cross_integration_events (source_integration_id, created_at DESC);
CREATE INDEX cross_integration_events_targets ON cross_integration_events USING gin (target_integration_ids);
CREATE INDEX cross_integration_events_status ON cross_integration_events (status, created_at DESC);

-- One row per (event, target). Order per (source, target) is the row id order: the worker only
-- ever attempts the oldest undelivered row of a pair (pending or failed-and-retrying); a dead
-- row no longer holds the pair up.
CREATE TABLE event_deliveries (
  id                    bigserial   PRIMARY KEY,
  event_id              text        NOT NULL REFERENCES cross_integration_events (id) ON DELETE CASCADE,
  source_integration_id text        NOT NULL,
  target_integration_id text        NOT NULL,
  priority_rank         smallint    NOT NULL,
  status                text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed', 'dead')),
  attempts              int         NOT NULL DEFAULT 0,
  -- bumped when a delivered row is republished, so receivers see a new webhook-id
  generation            int         NOT NULL DEFAULT 0,
  next_attempt_at       timestamptz NOT NULL,
  lease_until           timestamptz,
  last_error            text,
  last_status_code      int,
  channels              text[]      NOT NULL DEFAULT '{}',
  created_at            timestamptz NOT NULL,
  updated_at            timestamptz NOT NULL,
  last_attempt_at       timestamptz,
  delivered_at          timestamptz,
  dead_at               timestamptz,
  UNIQUE (event_id, target_integration_id)
);
CREATE INDEX event_deliveries_open ON event_deliveries (source_integration_id, target_integration_id, id) WHERE status IN ('pending', 'failed');
CREATE INDEX event_deliveries_target ON event_deliveries (target_integration_id, status);

-- An integration's webhook endpoint. `secret` signs deliveries the Standard Webhooks way.
CREATE TABLE integration_endpoints (
  integration_id   text        PRIMARY KEY,
  url              text        NOT NULL,
  secret           text        NOT NULL,
  event_names      text[],
  event_categories text[],
  created_by       text        NOT NULL,
  created_at       timestamptz NOT NULL,
  updated_at       timestamptz NOT NULL
);
