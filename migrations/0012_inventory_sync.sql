-- Inventory sync (services/integrations/inventory/, machines/integration/sync.ts).
--
-- Our side: the tenant catalog's stock per SKU ("EGDC" in the seed). `version` is bumped by
-- every change, `changed_at` is when the change happened (as its source reports it; the
-- most_recent strategy compares it with the channel's own change time).
CREATE TABLE inventory_items (
  tenant_id  text        NOT NULL,
  sku        text        NOT NULL,
  stock      integer     NOT NULL CHECK (stock >= 0),
  version    bigint      NOT NULL DEFAULT 1,
  changed_at timestamptz NOT NULL,
  -- what made the last change: api, nats, channel:<service>, resolution
  source     text        NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, sku)
);

-- svc.inventory.changed is applied once per Nats-Msg-Id (and a PUT once per Idempotency-Key).
CREATE TABLE inventory_messages (
  tenant_id  text        NOT NULL,
  message_id text        NOT NULL,
  sku        text        NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, message_id)
);

-- One row per (tenant, service, connection, SKU): where the SKU lives at the channel
-- (Shopify inventory item + location; MercadoLibre item + variation), built by SKU during a
-- full sync or set by hand (`source = 'manual'`, never overwritten by a sync), and the last
-- state both sides agreed on:
--   synced_stock / synced_version  the stock written or read at the last successful sync and
--                                  our item's version then: "changed since the last sync" is
--                                  measured against them on each side
--   channel_stock / channel_changed_at  the channel's last known stock and its change time
CREATE TABLE integration_mappings (
  tenant_id          text        NOT NULL,
  service            text        NOT NULL,
  connection_id      text        NOT NULL,
  sku                text        NOT NULL,
  external_key       text        NOT NULL,
  external_ids       jsonb       NOT NULL,
  source             text        NOT NULL CHECK (source IN ('sync', 'manual')),
  channel_stock      integer,
  channel_changed_at timestamptz,
  synced_stock       integer,
  synced_version     bigint,
  last_synced_at     timestamptz,
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, service, connection_id, sku)
);
-- a webhook or a poll names the channel's record, not our SKU
CREATE UNIQUE INDEX integration_mappings_external ON integration_mappings (service, connection_id, external_key);

-- Per (tenant, service) sync settings.
CREATE TABLE integration_sync_config (
  tenant_id          text        NOT NULL,
  service            text        NOT NULL,
  conflict_strategy  text        NOT NULL DEFAULT 'most_recent' CHECK (conflict_strategy IN ('egdc_wins', 'marketplace_wins', 'most_recent', 'manual')),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  updated_by         text,
  PRIMARY KEY (tenant_id, service)
);

-- Conflicts the manual strategy leaves to a person: at most one open per SKU and connection;
-- the SKU is not synced while it is open.
CREATE TABLE integration_conflicts (
  id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id      text        NOT NULL,
  service        text        NOT NULL,
  connection_id  text        NOT NULL,
  sku            text        NOT NULL,
  our_stock      integer     NOT NULL,
  channel_stock  integer     NOT NULL,
  our_changed_at timestamptz,
  channel_changed_at timestamptz,
  status         text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
  resolution     text        CHECK (resolution IN ('egdc', 'marketplace', 'custom')),
  resolved_stock integer,
  reason         text,
  resolved_by    text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  resolved_at    timestamptz
);
CREATE UNIQUE INDEX integration_conflicts_open ON integration_conflicts (tenant_id, service, connection_id, sku) WHERE status = 'open';
CREATE INDEX integration_conflicts_list ON integration_conflicts (tenant_id, service, status, id);

-- The seed's sync log: every item's outcome, one row per (operation, SKU). `op_key` is the
-- idempotency key of the connector call that produced it (a page of a sync, a push, a webhook),
-- so a call run again after a crash finds what it already did instead of doing it twice.
CREATE TABLE integration_sync_logs (
  id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id      text        NOT NULL,
  service        text        NOT NULL,
  connection_id  text        NOT NULL,
  sync_id        text,
  op_key         text        NOT NULL,
  sku            text        NOT NULL,
  direction      text        NOT NULL CHECK (direction IN ('inbound', 'outbound', 'both')),
  -- synced: one side was written; unchanged; conflict (resolved by the strategy or left open);
  -- failed; unmapped (no record on the other side, or no SKU); skipped (an open conflict)
  outcome        text        NOT NULL CHECK (outcome IN ('synced', 'unchanged', 'conflict', 'failed', 'unmapped', 'skipped', 'resolved')),
  our_stock      integer,
  channel_stock  integer,
  resolved_stock integer,
  action         text,
  reason         text,
  error_code     text,
  -- the change time our side took when this item wrote it (what InventoryUpdated carries)
  changed_at     timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX integration_sync_logs_op ON integration_sync_logs (op_key, sku);
CREATE INDEX integration_sync_logs_list ON integration_sync_logs (tenant_id, service, id DESC);
CREATE INDEX integration_sync_logs_sync ON integration_sync_logs (sync_id, id) WHERE sync_id IS NOT NULL;
