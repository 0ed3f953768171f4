-- Webhooks in (services/integrations/webhooks.ts). One row per delivery Concord accepted from a
-- provider: the row is the durable acceptance (the 200 is answered after it commits); the
-- connection's actor (type `integration`) is handed the row afterwards, asynchronously.
--   delivery_id  Shopify X-Shopify-Webhook-Id, MercadoLibre `_id`: the same on a provider's retries
--   event_id     Shopify X-Shopify-Event-Id (the same across subscriptions to one topic)
--   resource     what the delivery is about (`inventory_level:<item>:<location>`, `/items/MLA1`)
--   triggered_at Shopify X-Shopify-Triggered-At (ML: `sent`)
--   status       accepted -> handed (given to the actor's inbox); stale: a retry older than the
--                newest accepted for its resource, kept for the record and never handed
-- A repeat of either id is a duplicate: it answers 200 and writes nothing.
CREATE TABLE integration_webhooks (
  id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id     text        NOT NULL,
  service       text        NOT NULL,
  connection_id text        NOT NULL,
  topic         text        NOT NULL,
  delivery_id   text        NOT NULL,
  event_id      text,
  resource      text,
  triggered_at  timestamptz,
  status        text        NOT NULL CHECK (status IN ('accepted', 'stale', 'handed')),
  payload       jsonb       NOT NULL DEFAULT '{}',
  received_at   timestamptz NOT NULL DEFAULT now(),
  handed_at     timestamptz,
  -- received -> handed to the actor's inbox, in milliseconds (for metrics)
  processing_ms double precision
);

CREATE UNIQUE INDEX integration_webhooks_delivery ON integration_webhooks (service, connection_id, delivery_id);
CREATE UNIQUE INDEX integration_webhooks_event ON integration_webhooks (service, connection_id, event_id) WHERE event_id IS NOT NULL;
-- the hand-off sweep finds what is still waiting for an actor
CREATE INDEX integration_webhooks_accepted ON integration_webhooks (received_at) WHERE status = 'accepted';
-- the connection's status answers the last webhook received
CREATE INDEX integration_webhooks_connection ON integration_webhooks (tenant_id, service, connection_id, received_at DESC);

-- The newest Triggered-At accepted per resource: an upsert on this row serialises concurrent
-- deliveries of one resource, so a stale retry is recognised even when it races a newer one.
CREATE TABLE integration_webhook_resources (
  service       text        NOT NULL,
  connection_id text        NOT NULL,
  resource      text        NOT NULL,
  newest_triggered_at timestamptz NOT NULL,
  PRIMARY KEY (service, connection_id, resource)
);

-- a webhook names its shop or seller, not its tenant: find the connection by (service, account)
CREATE INDEX integration_credentials_account ON integration_credentials (service, connection_id);
