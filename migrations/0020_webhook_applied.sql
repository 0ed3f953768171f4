-- When a stock webhook (Shopify `inventory_levels/update`, MercadoLibre `items`) was applied to our
-- side and its changes published (services/integrations/inventory/service.ts applyWebhook). The
-- sweep that finds the ones a crash or a failure left behind read every stock webhook of the last
-- day with an anti-join on the sync logs every 10 s: at 100 webhooks/s all day, millions of rows per
-- sweep. It now walks this partial index, which holds only the ones not applied yet. Marked after
-- the publish, so a crash between the log rows and the publish is swept too (the second apply finds
-- its logs and publishes the same message ids; a webhook that changes nothing is marked as well).
ALTER TABLE integration_webhooks ADD COLUMN applied_at timestamptz;

-- what was accepted before: applied when its log rows exist, or too old for the sweep anyway
UPDATE integration_webhooks w SET applied_at = w.received_at
 WHERE w.topic IN ('inventory_levels/update', 'items')
   AND (w.received_at <= now() - interval '1 day' OR EXISTS (SELECT 1 FROM integration_sync_logs l WHERE l.op_key = 'webhook:' || w.id));

CREATE INDEX integration_webhooks_unapplied ON integration_webhooks (id)
 WHERE applied_at IS NULL AND topic IN ('inventory_levels/update', 'items') AND status IN ('accepted', 'handed');
