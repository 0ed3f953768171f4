-- The partner registry (services/ecosystem/). One row per registered integration: what it is
-- (platform, template, tier, features), how to reach it (config: baseUrl, healthCheck; the
-- non-secret half of its authentication in `auth`) and who owns it. Its secret lives in the
-- vault (`integration_credentials`, service `ecosystem`, connection = name); its health lives in
-- its actor (type `ecosystem`, id = this row's id), whose durable timers run the checks.
--   id                     <tenant>:<name>, also the actor's id
--   credentials_set_at     when the secret was last replaced (the rotation policy reads it)
--   credentials_revoked_at when it was revoked (the integration is inactive until new credentials come)
--   certificate_expires_at a certificate integration's client certificate `validTo` (parsed at
--                          registration with node:crypto X509Certificate)
CREATE TABLE ecosystem_integrations (
  id                     text        PRIMARY KEY,
  tenant_id              text        NOT NULL,
  name                   text        NOT NULL,
  platform               text        NOT NULL,
  template               text        NOT NULL,
  tier                   text        NOT NULL,
  features               text[]      NOT NULL DEFAULT '{}',
  auth_pattern           text        NOT NULL,
  auth                   jsonb       NOT NULL DEFAULT '{}',
  scopes                 text[]      NOT NULL DEFAULT '{}',
  config                 jsonb       NOT NULL DEFAULT '{}',
  status                 text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive')),
  credentials_set_at     timestamptz NOT NULL,
  credentials_version    bigint      NOT NULL,
  -- set when the credentials were revoked (forgotten from the vault) without deleting the registration
  credentials_revoked_at timestamptz,
  certificate_expires_at timestamptz,
  version                integer     NOT NULL DEFAULT 1,
  created_at             timestamptz NOT NULL DEFAULT now(),
  updated_at             timestamptz NOT NULL DEFAULT now(),
  UNIQUE (tenant_id, name)
);
-- the list is ordered by (name, id) for every caller; a vendor's by (tenant_id, name) (the unique index)
CREATE INDEX ecosystem_integrations_name ON ecosystem_integrations (name, id);
CREATE INDEX ecosystem_integrations_features ON ecosystem_integrations USING gin (features);

-- Health checks per integration and hour: what availability over 24 h and 30 d is computed from
-- (one upsert per check, off every call's hot path: checks are background work).
CREATE TABLE ecosystem_health_hourly (
  integration_id text        NOT NULL,
  hour           timestamptz NOT NULL,
  checks         integer     NOT NULL DEFAULT 0,
  ok             integer     NOT NULL DEFAULT 0,
  latency_ms_sum bigint      NOT NULL DEFAULT 0,
  PRIMARY KEY (integration_id, hour)
);

-- Usage per integration and hour, flushed from the in-memory meter (services/ecosystem/usage.ts):
-- a call adds to a counter in memory; one statement every ECOSYSTEM_USAGE_FLUSH_MS adds the
-- counters here. Days are summed from hours.
CREATE TABLE ecosystem_usage_hourly (
  integration_id text        NOT NULL,
  hour           timestamptz NOT NULL,
  tenant_id      text        NOT NULL,
  provider       text        NOT NULL,
  calls          bigint      NOT NULL DEFAULT 0,
  errors         bigint      NOT NULL DEFAULT 0,
  latency_ms_sum bigint      NOT NULL DEFAULT 0,
  latency_ms_max integer     NOT NULL DEFAULT 0,
  budget_units   bigint      NOT NULL DEFAULT 0,
  PRIMARY KEY (integration_id, hour)
);
CREATE INDEX ecosystem_usage_hourly_hour ON ecosystem_usage_hourly (hour);
