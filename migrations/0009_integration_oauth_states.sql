-- OAuth authorizations in flight (services/integrations/connections.ts): one row per signed
-- `state` handed out, so a callback can use each state once. The state itself is signed and
-- carries tenant, provider, shop and expiry; this row only records its nonce and whether it was
-- used. Nothing secret is stored here (the PKCE verifier is derived from the nonce server-side).
CREATE TABLE integration_oauth_states (
  nonce       text        PRIMARY KEY,
  tenant_id   text        NOT NULL,
  provider    text        NOT NULL,
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- the janitor's prune of expired states
CREATE INDEX integration_oauth_states_expires_at ON integration_oauth_states (expires_at);
