-- The outbound call door (services/integrations/outbound/): every call Concord makes to a
-- provider passes one row of integration_outbound, shared by every Concord process, so the
-- budget and the circuit breaker hold across processes.
--
-- integration_outbound: one row per budget key, (tenant, provider, scope); scope is the account
-- for providers budgeted per account (Shopify: per store) and '' for those budgeted per tenant
-- (MercadoLibre, Shein, TikTok).
--   capacity, refill_per_s, tokens, refilled_at  the token bucket (NULL refill: no budget)
--   paused_until   a 429 / Retry-After / THROTTLED stops this key until then (and drains it)
--   points_*       Shopify's cost bucket as last reported in extensions.cost.throttleStatus
--   breaker_state  closed | open | half_open; consecutive_failures; opened_at; half_open_at (open
--                  until then); probe_until (the one probe's lease while half_open)
--   health         healthy | degraded: the error-rate alert (IntegrationAlert on each change)
CREATE TABLE integration_outbound (
  tenant_id            text             NOT NULL,
  provider             text             NOT NULL,
  scope                text             NOT NULL,
  capacity             double precision,
  refill_per_s         double precision,
  tokens               double precision NOT NULL DEFAULT 0,
  refilled_at          timestamptz      NOT NULL DEFAULT clock_timestamp(),
  paused_until         timestamptz,
  points               double precision,
  points_max           double precision,
  points_restore       double precision,
  points_at            timestamptz,
  breaker_state        text             NOT NULL DEFAULT 'closed' CHECK (breaker_state IN ('closed', 'open', 'half_open')),
  consecutive_failures integer          NOT NULL DEFAULT 0,
  opened_at            timestamptz,
  half_open_at         timestamptz,
  probe_until          timestamptz,
  health               text             NOT NULL DEFAULT 'healthy' CHECK (health IN ('healthy', 'degraded')),
  health_changed_at    timestamptz,
  PRIMARY KEY (tenant_id, provider, scope)
);

-- API usage per key and window (the seed's table): calls made (attempts that reached the
-- provider), failed ones, throttled ones (429, THROTTLED, a wait the budget imposed), the total
-- response time, and the limit in force. Each process adds its counts every second.
CREATE TABLE integration_rate_limits (
  tenant_id         text             NOT NULL,
  provider          text             NOT NULL,
  scope             text             NOT NULL,
  window_start      timestamptz      NOT NULL,
  window_ms         integer          NOT NULL,
  rate_limit        text,
  calls             integer          NOT NULL DEFAULT 0,
  errors            integer          NOT NULL DEFAULT 0,
  throttled         integer          NOT NULL DEFAULT 0,
  response_ms_total double precision NOT NULL DEFAULT 0,
  updated_at        timestamptz      NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, provider, scope, window_start)
);
CREATE INDEX integration_rate_limits_recent ON integration_rate_limits (window_start);

-- Takes one call's way through a key, atomically under the row's lock: the breaker first (open:
-- answer 'open' and how long until half-open; half-open with a live probe: 'open'; open past its
-- cooldown, or a probe lease expired: this call is the one probe), then the bucket (one token,
-- and Shopify's cost points when known). Answers 'go', 'probe', 'wait' (ms) or 'open' (ms).
-- The database's clock is the one clock every process shares.
CREATE FUNCTION integration_outbound_take(
  p_tenant text, p_provider text, p_scope text,
  p_capacity double precision, p_refill double precision, p_cost double precision, p_probe_ms integer
) RETURNS TABLE (outcome text, wait_ms integer, breaker text, failures integer)
LANGUAGE plpgsql AS $$
DECLARE
  r integration_outbound;
  t timestamptz;
  avail double precision;
  pts double precision;
  wait double precision := 0;
  el double precision;
  probe boolean := false;
BEGIN
  INSERT INTO integration_outbound (tenant_id, provider, scope, capacity, refill_per_s, tokens, refilled_at)
  VALUES (p_tenant, p_provider, p_scope, p_capacity, p_refill, coalesce(p_capacity, 0), clock_timestamp())
  ON CONFLICT DO NOTHING;
  SELECT * INTO r FROM integration_outbound o
   WHERE o.tenant_id = p_tenant AND o.provider = p_provider AND o.scope = p_scope FOR UPDATE;
  t := clock_timestamp();
  -- a pause leaves refilled_at in the future: nothing refills before it
  el := greatest(0, extract(epoch FROM t - r.refilled_at));
  IF r.breaker_state = 'open' THEN
    IF t < r.half_open_at THEN
      RETURN QUERY SELECT 'open'::text, ceil(extract(epoch FROM r.half_open_at - t) * 1000)::integer, r.breaker_state, r.consecutive_failures;
      RETURN;
    END IF;
    probe := true;
  ELSIF r.breaker_state = 'half_open' THEN
    IF r.probe_until IS NOT NULL AND t < r.probe_until THEN
      RETURN QUERY SELECT 'open'::text, ceil(extract(epoch FROM r.probe_until - t) * 1000)::integer, r.breaker_state, r.consecutive_failures;
      RETURN;
    END IF;
    probe := true;
  END IF;
  IF p_refill IS NULL THEN
    avail := 1;
  ELSE
    avail := least(p_capacity, (CASE WHEN r.refill_per_s IS NULL THEN p_capacity ELSE r.tokens END)
                               + el * p_refill);
    IF avail < 1 THEN wait := (1 - avail) / p_refill * 1000; END IF;
  END IF;
  IF r.paused_until IS NOT NULL AND t < r.paused_until THEN
    wait := greatest(wait, extract(epoch FROM r.paused_until - t) * 1000);
  END IF;
  IF r.points IS NOT NULL AND p_cost > 0 THEN
    pts := least(r.points_max, r.points + greatest(0, extract(epoch FROM t - r.points_at)) * r.points_restore);
    IF pts < p_cost AND r.points_restore > 0 THEN
      wait := greatest(wait, (p_cost - pts) / r.points_restore * 1000);
    END IF;
  END IF;
  IF wait > 0 THEN
    UPDATE integration_outbound o SET tokens = greatest(avail, 0), refilled_at = greatest(o.refilled_at, t), capacity = p_capacity, refill_per_s = p_refill
     WHERE o.tenant_id = p_tenant AND o.provider = p_provider AND o.scope = p_scope;
    RETURN QUERY SELECT 'wait'::text, greatest(1, ceil(wait))::integer, r.breaker_state, r.consecutive_failures;
    RETURN;
  END IF;
  UPDATE integration_outbound o SET
    tokens = CASE WHEN p_refill IS NULL THEN 0 ELSE avail - 1 END, refilled_at = greatest(o.refilled_at, t),
    capacity = p_capacity, refill_per_s = p_refill,
    points = CASE WHEN pts IS NULL THEN o.points ELSE pts - p_cost END,
    points_at = CASE WHEN pts IS NULL THEN o.points_at ELSE t END,
    breaker_state = CASE WHEN probe THEN 'half_open' ELSE o.breaker_state END,
    probe_until = CASE WHEN probe THEN t + make_interval(secs => p_probe_ms / 1000.0) ELSE o.probe_until END
   WHERE o.tenant_id = p_tenant AND o.provider = p_provider AND o.scope = p_scope;
  RETURN QUERY SELECT (CASE WHEN probe THEN 'probe' ELSE 'go' END)::text, 0, (CASE WHEN probe THEN 'half_open' ELSE r.breaker_state END)::text, r.consecutive_failures;
END;
$$;

-- Reports one attempt's outcome: 'ok' (the provider answered: success, or a refusal that shows
-- it is up), 'failed' (down, timed out, unreachable: counts toward the breaker). A probe's
-- outcome closes or reopens the breaker; the threshold-th consecutive failure opens it. A pause
-- (429, Retry-After, THROTTLED) stops the key and drains its bucket; Shopify's reported cost
-- bucket replaces the estimate. Answers the breaker after the report and whether it changed.
CREATE FUNCTION integration_outbound_report(
  p_tenant text, p_provider text, p_scope text, p_outcome text, p_probe boolean,
  p_threshold integer, p_cooldown_ms integer, p_pause_ms integer,
  p_points double precision, p_points_max double precision, p_points_restore double precision
) RETURNS TABLE (breaker text, failures integer, opened_at timestamptz, changed boolean)
LANGUAGE plpgsql AS $$
DECLARE
  r integration_outbound;
  t timestamptz := clock_timestamp();
  s text;
  f integer;
  o timestamptz;
BEGIN
  -- a key without a budget may have no row yet (its calls go through without one)
  INSERT INTO integration_outbound (tenant_id, provider, scope) VALUES (p_tenant, p_provider, p_scope) ON CONFLICT DO NOTHING;
  SELECT * INTO r FROM integration_outbound x
   WHERE x.tenant_id = p_tenant AND x.provider = p_provider AND x.scope = p_scope FOR UPDATE;
  s := r.breaker_state; f := r.consecutive_failures; o := r.opened_at;
  IF p_outcome = 'ok' THEN
    IF s = 'closed' OR p_probe OR (s = 'half_open' AND (r.probe_until IS NULL OR t >= r.probe_until)) THEN
      s := 'closed'; f := 0; o := NULL;
    END IF;
  ELSIF p_outcome = 'failed' THEN
    f := f + 1;
    IF (p_probe AND s = 'half_open') OR (s = 'closed' AND f >= p_threshold) THEN
      s := 'open'; o := t;
    END IF;
  END IF;
  UPDATE integration_outbound x SET
    breaker_state = s, consecutive_failures = f, opened_at = o,
    half_open_at = CASE WHEN s = 'open' AND r.breaker_state <> 'open' THEN t + make_interval(secs => p_cooldown_ms / 1000.0) ELSE x.half_open_at END,
    probe_until = CASE WHEN s <> 'half_open' THEN NULL ELSE x.probe_until END,
    paused_until = CASE WHEN p_pause_ms > 0 THEN greatest(coalesce(x.paused_until, t), t + make_interval(secs => p_pause_ms / 1000.0)) ELSE x.paused_until END,
    tokens = CASE WHEN p_pause_ms > 0 THEN 0 ELSE x.tokens END,
    refilled_at = CASE WHEN p_pause_ms > 0 THEN greatest(x.refilled_at, t + make_interval(secs => p_pause_ms / 1000.0)) ELSE x.refilled_at END,
    points = coalesce(p_points, x.points), points_max = coalesce(p_points_max, x.points_max),
    points_restore = coalesce(p_points_restore, x.points_restore), points_at = CASE WHEN p_points IS NULL THEN x.points_at ELSE t END
   WHERE x.tenant_id = p_tenant AND x.provider = p_provider AND x.scope = p_scope;
  RETURN QUERY SELECT s, f, o, (s <> r.breaker_state);
END;
$$;
