-- The durable actor runtime: snapshots, inbox (dedupe), outbox, timers, journal, dead letters.

CREATE TABLE actors (
  type            text        NOT NULL,
  id              text        NOT NULL,
  tenant          text,
  machine_version integer     NOT NULL,
  version         bigint      NOT NULL CHECK (version > 0),
  state_value     jsonb       NOT NULL,
  status          text        NOT NULL,
  attrs           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  snapshot        jsonb       NOT NULL,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL,
  PRIMARY KEY (type, id)
) WITH (fillfactor = 80);
-- Only columns a transition rarely changes are indexed (besides the key), and pages keep room:
-- most transitions are then HOT updates that touch no index at all.
CREATE INDEX actors_type_status ON actors (type, status);
CREATE INDEX actors_tenant ON actors (tenant, type) WHERE tenant IS NOT NULL;
CREATE INDEX actors_attrs ON actors USING gin (attrs jsonb_path_ops);

-- One row per applied message id per actor: the first answer, replayed for every duplicate.
CREATE TABLE inbox (
  actor_type  text        NOT NULL,
  actor_id    text        NOT NULL,
  message_id  text        NOT NULL,
  version     bigint      NOT NULL,
  result      jsonb       NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (actor_type, actor_id, message_id)
);
CREATE INDEX inbox_created ON inbox (created_at);
-- Append-heavy tables: keep their statistics fresh, so plans never assume they are still empty.
ALTER TABLE inbox SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 500);

-- Effects produced by transitions, written in the same transaction, carried out after commit.
CREATE TABLE outbox (
  id          bigserial   PRIMARY KEY,
  partition   integer     NOT NULL,
  source_type text        NOT NULL,
  source_id   text        NOT NULL,
  kind        text        NOT NULL CHECK (kind IN ('publish', 'send', 'call')),
  subject     text        NOT NULL,
  message_id  text        NOT NULL,
  payload     jsonb       NOT NULL,
  headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
  attempts    integer     NOT NULL DEFAULT 0,
  last_error  text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_partition ON outbox (partition, id);
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- Durable timers: XState's delayed events, owned by the runtime (xstate does not persist them).
CREATE TABLE timers (
  id            bigserial   PRIMARY KEY,
  actor_type    text        NOT NULL,
  actor_id      text        NOT NULL,
  timer_key     text        NOT NULL,
  xstate_id     text        NOT NULL,
  source_path   text        NOT NULL,
  target_path   text        NOT NULL,
  event         jsonb       NOT NULL,
  due_at        timestamptz NOT NULL,
  claimed_until timestamptz,
  UNIQUE (actor_type, actor_id, timer_key)
);
CREATE INDEX timers_due ON timers (due_at);

-- Every applied event with the state it led to: history for operators, and replay.
CREATE TABLE journal (
  actor_type  text        NOT NULL,
  actor_id    text        NOT NULL,
  version     bigint      NOT NULL,
  message_id  text,
  kind        text        NOT NULL,
  target_path text        NOT NULL DEFAULT '',
  event       jsonb       NOT NULL,
  input       jsonb,                       -- the machine input, on the creating entry (version 1)
  state_value jsonb       NOT NULL,
  at          timestamptz NOT NULL,
  PRIMARY KEY (actor_type, actor_id, version)
);

-- Correlation ids an actor waits on: a service event carrying one is routed to that actor.
CREATE TABLE correlations (
  correlation_id text        PRIMARY KEY,
  actor_type     text        NOT NULL,
  actor_id       text        NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX correlations_actor ON correlations (actor_type, actor_id);

CREATE TABLE dead_letters (
  id          bigserial   PRIMARY KEY,
  origin      text        NOT NULL,
  reason      text        NOT NULL,
  subject     text,
  actor_type  text,
  actor_id    text,
  message_id  text,
  payload     jsonb       NOT NULL,
  headers     jsonb       NOT NULL DEFAULT '{}'::jsonb,
  error       text,
  attempts    integer     NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL DEFAULT now(),
  replayed_at timestamptz
);
CREATE INDEX dead_letters_open ON dead_letters (created_at) WHERE replayed_at IS NULL;
