-- Vendor-partner coordination: the plain tables (what is not an actor), the audit log and the
-- HTTP idempotency keys. Relationships are actors (see machines/relationship.ts).

-- Edges of the integration dependency graph. REQUIRES/DEPENDS_ON_DATA edges form a DAG
-- (checked under an advisory lock at insert time); CONFLICTS/ENHANCES may point anywhere.
CREATE TABLE integration_dependencies (
  id                        text        PRIMARY KEY,
  integration_id            text        NOT NULL,
  depends_on_integration_id text        NOT NULL,
  dependency_type           text        NOT NULL CHECK (dependency_type IN ('REQUIRES', 'CONFLICTS', 'ENHANCES', 'DEPENDS_ON_DATA')),
  condition                 text,
  created_by                text        NOT NULL,
  created_at                timestamptz NOT NULL,
  updated_at                timestamptz NOT NULL,
  CHECK (integration_id <> depends_on_integration_id),
  UNIQUE (integration_id, depends_on_integration_id, dependency_type)
);
CREATE INDEX integration_dependencies_target ON integration_dependencies (depends_on_integration_id);

-- The last known operational status of an integration, as reported by operators or services
-- (an `integration` actor's own status takes precedence when one exists).
CREATE TABLE integration_status (
  integration_id text        PRIMARY KEY,
  status         text        NOT NULL CHECK (status IN ('active', 'inactive', 'degraded')),
  updated_by     text        NOT NULL,
  updated_at     timestamptz NOT NULL
);

CREATE TABLE shared_resources (
  id             text        PRIMARY KEY,
  resource_id    text        NOT NULL,
  resource_type  text        NOT NULL CHECK (resource_type IN ('API_ENDPOINT', 'WEBHOOK', 'DATABASE_TABLE', 'CACHE_KEY', 'QUEUE_TOPIC', 'STORAGE_BUCKET')),
  owner_id       text        NOT NULL,
  owner_type     text        NOT NULL CHECK (owner_type IN ('vendor', 'partner')),
  name           text        NOT NULL,
  description    text,
  configuration  jsonb,
  access_control jsonb,
  is_active      boolean     NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL
);
CREATE INDEX shared_resources_owner ON shared_resources (owner_id, owner_type, created_at DESC);
CREATE INDEX shared_resources_created ON shared_resources (created_at DESC, id DESC);

CREATE TABLE resource_access_grants (
  id              text        PRIMARY KEY,
  resource_id     text        NOT NULL REFERENCES shared_resources (id) ON DELETE CASCADE,
  granted_to_id   text        NOT NULL,
  granted_to_type text        NOT NULL CHECK (granted_to_type IN ('vendor', 'partner')),
  access_level    text        NOT NULL CHECK (access_level IN ('read', 'write', 'admin')),
  granted_by      text        NOT NULL,
  granted_at      timestamptz NOT NULL,
  expires_at      timestamptz,
  is_active       boolean     NOT NULL DEFAULT true,
  conditions      jsonb,
  revoked_at      timestamptz,
  revoked_by      text,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL
);
CREATE INDEX resource_access_grants_resource ON resource_access_grants (resource_id) WHERE is_active;
CREATE INDEX resource_access_grants_grantee ON resource_access_grants (granted_to_id, granted_to_type) WHERE is_active;

-- Who changed what, when, with the object before and after. `dedupe_key` makes a record
-- written after an actor commit safe to write again on a retry.
CREATE TABLE audit_log (
  id          bigserial   PRIMARY KEY,
  at          timestamptz NOT NULL,
  subject     text        NOT NULL,
  role        text        NOT NULL,
  tenant      text,
  action      text        NOT NULL,
  object_type text        NOT NULL,
  object_id   text        NOT NULL,
  before      jsonb,
  after       jsonb,
  request_id  text,
  dedupe_key  text        UNIQUE
);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, id);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);

-- The first answer to a POST carrying an Idempotency-Key, per caller scope.
CREATE TABLE idempotency_keys (
  scope        text        NOT NULL,
  key          text        NOT NULL,
  fingerprint  text        NOT NULL,
  status       integer     NOT NULL,
  body         jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
