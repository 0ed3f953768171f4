-- A call may be more than one request to the provider (MercadoLibre's stock write: the item read
-- that checks the expected stock, then the PUT; ML counts both). Its lease now carries the
-- requests it makes (`units`), the level is spent by them when it ends, and it is admitted when
-- level - units in flight >= its units. A call of more units than the bucket holds is admitted
-- at a full bucket and leaves the level below zero (the refill pays it back before the next).

ALTER TABLE integration_outbound_inflight ADD COLUMN units double precision NOT NULL DEFAULT 1;

DROP FUNCTION integration_outbound_take(text, text, text, double precision, double precision, double precision, integer, integer);

CREATE FUNCTION integration_outbound_take(
  p_tenant text, p_provider text, p_scope text,
  p_capacity double precision, p_refill double precision, p_cost double precision, p_probe_ms integer, p_lease_ms integer,
  p_units double precision
) RETURNS TABLE (outcome text, wait_ms integer, breaker text, failures integer, call_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
  r integration_outbound;
  t timestamptz;
  lvl double precision;
  avail double precision;
  expired double precision := 0;
  busy double precision := 0;
  need double precision := least(greatest(p_units, 1), coalesce(p_capacity, 1));
  pts double precision;
  wait double precision := 0;
  el double precision;
  probe boolean := false;
  id bigint;
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
      RETURN QUERY SELECT 'open'::text, ceil(extract(epoch FROM r.half_open_at - t) * 1000)::integer, r.breaker_state, r.consecutive_failures, NULL::bigint;
      RETURN;
    END IF;
    probe := true;
  ELSIF r.breaker_state = 'half_open' THEN
    IF r.probe_until IS NOT NULL AND t < r.probe_until THEN
      RETURN QUERY SELECT 'open'::text, ceil(extract(epoch FROM r.probe_until - t) * 1000)::integer, r.breaker_state, r.consecutive_failures, NULL::bigint;
      RETURN;
    END IF;
    probe := true;
  END IF;
  IF p_refill IS NULL THEN
    lvl := 0;
    avail := 1;
  ELSE
    -- leases past their deadline: their calls ended (their process died), counted as ending now
    WITH gone AS (
      DELETE FROM integration_outbound_inflight i
       WHERE i.tenant_id = p_tenant AND i.provider = p_provider AND i.scope = p_scope AND i.lease_until <= t
      RETURNING i.units
    ) SELECT coalesce(sum(units), 0) INTO expired FROM gone;
    SELECT coalesce(sum(i.units), 0) INTO busy FROM integration_outbound_inflight i
     WHERE i.tenant_id = p_tenant AND i.provider = p_provider AND i.scope = p_scope;
    lvl := least(p_capacity, (CASE WHEN r.refill_per_s IS NULL THEN p_capacity ELSE r.tokens END) + el * p_refill) - expired;
    avail := lvl - busy;
    IF avail < need THEN
      wait := (need - avail) / p_refill * 1000;
      -- a full level waits for calls to end, not for the refill: look again soon
      IF lvl >= p_capacity THEN wait := least(wait, 50); END IF;
    END IF;
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
    UPDATE integration_outbound o SET tokens = CASE WHEN p_refill IS NULL THEN o.tokens ELSE lvl END, refilled_at = greatest(o.refilled_at, t), capacity = p_capacity, refill_per_s = p_refill
     WHERE o.tenant_id = p_tenant AND o.provider = p_provider AND o.scope = p_scope;
    RETURN QUERY SELECT 'wait'::text, greatest(1, ceil(wait))::integer, r.breaker_state, r.consecutive_failures, NULL::bigint;
    RETURN;
  END IF;
  IF p_refill IS NOT NULL THEN
    INSERT INTO integration_outbound_inflight (tenant_id, provider, scope, granted_at, lease_until, units)
    VALUES (p_tenant, p_provider, p_scope, t, t + make_interval(secs => greatest(p_lease_ms, 1000) / 1000.0), greatest(p_units, 1))
    RETURNING integration_outbound_inflight.call_id INTO id;
  END IF;
  UPDATE integration_outbound o SET
    tokens = CASE WHEN p_refill IS NULL THEN 0 ELSE lvl END, refilled_at = greatest(o.refilled_at, t),
    capacity = p_capacity, refill_per_s = p_refill,
    points = CASE WHEN pts IS NULL THEN o.points ELSE pts - p_cost END,
    points_at = CASE WHEN pts IS NULL THEN o.points_at ELSE t END,
    breaker_state = CASE WHEN probe THEN 'half_open' ELSE o.breaker_state END,
    probe_until = CASE WHEN probe THEN t + make_interval(secs => p_probe_ms / 1000.0) ELSE o.probe_until END
   WHERE o.tenant_id = p_tenant AND o.provider = p_provider AND o.scope = p_scope;
  RETURN QUERY SELECT (CASE WHEN probe THEN 'probe' ELSE 'go' END)::text, 0, (CASE WHEN probe THEN 'half_open' ELSE r.breaker_state END)::text, r.consecutive_failures, id;
END;
$$;

-- Ends a call's lease: its units are spent from the level now.
CREATE OR REPLACE FUNCTION integration_outbound_done(p_tenant text, p_provider text, p_scope text, p_call bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  t timestamptz;
  n double precision;
BEGIN
  PERFORM 1 FROM integration_outbound o
   WHERE o.tenant_id = p_tenant AND o.provider = p_provider AND o.scope = p_scope FOR UPDATE;
  DELETE FROM integration_outbound_inflight i
   WHERE i.tenant_id = p_tenant AND i.provider = p_provider AND i.scope = p_scope AND i.call_id = p_call
  RETURNING i.units INTO n;
  IF n IS NULL THEN RETURN; END IF;
  t := clock_timestamp();
  UPDATE integration_outbound o SET
    tokens = least(coalesce(o.capacity, o.tokens), o.tokens + greatest(0, extract(epoch FROM t - o.refilled_at)) * coalesce(o.refill_per_s, 0)) - n,
    refilled_at = greatest(o.refilled_at, t)
   WHERE o.tenant_id = p_tenant AND o.provider = p_provider AND o.scope = p_scope;
END;
$$;
