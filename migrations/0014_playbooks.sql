-- Playbooks (issue 19): a playbook and its versions (an update is a new version; an execution
-- runs the version it started with, which it carries in its actor's snapshot), and the
-- webhook-ids its webhook trigger has accepted (a reused one is refused). Executions and cron
-- schedules are actors (`playbook-execution`, `playbook-schedule`) in `actors`.

CREATE TABLE playbooks (
  id          uuid PRIMARY KEY,
  tenant      text NOT NULL,
  name        text NOT NULL,
  version     integer NOT NULL,
  created_at  timestamptz NOT NULL,
  created_by  text NOT NULL,
  updated_at  timestamptz NOT NULL,
  deleted_at  timestamptz
);
CREATE UNIQUE INDEX playbooks_tenant_name ON playbooks (tenant, name) WHERE deleted_at IS NULL;
CREATE INDEX playbooks_created ON playbooks (created_at DESC, id DESC) WHERE deleted_at IS NULL;

CREATE TABLE playbook_versions (
  playbook_id  uuid NOT NULL REFERENCES playbooks (id) ON DELETE CASCADE,
  version      integer NOT NULL,
  format       text NOT NULL CHECK (format IN ('yaml', 'json')),
  source       text NOT NULL,
  definition   jsonb NOT NULL,
  -- NATS subject patterns of the version's nats triggers, for the intake
  nats_subjects text[] NOT NULL DEFAULT '{}',
  created_at   timestamptz NOT NULL,
  created_by   text NOT NULL,
  PRIMARY KEY (playbook_id, version)
);

CREATE TABLE playbook_webhook_ids (
  playbook_id  uuid NOT NULL REFERENCES playbooks (id) ON DELETE CASCADE,
  webhook_id   text NOT NULL,
  received_at  timestamptz NOT NULL,
  execution_id uuid NOT NULL,
  PRIMARY KEY (playbook_id, webhook_id)
);
CREATE INDEX playbook_webhook_ids_received ON playbook_webhook_ids (received_at);
