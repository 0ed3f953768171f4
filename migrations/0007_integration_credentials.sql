-- The credential vault (services/integrations/vault.ts): one row per (tenant, service, connection)
-- with its secret encrypted at rest. `encrypted_credentials` is an AES-256-GCM envelope
-- `v1:<keyId>:<iv>:<tag>:<ciphertext>` (base64url) whose associated data binds it to this row's
-- key, so a ciphertext copied to another row does not decrypt. `key_id` repeats the envelope's
-- key id for the start-up check and for rotation. Everything else is non-secret and in clear.
CREATE TABLE integration_credentials (
  tenant_id             text        NOT NULL,
  service               text        NOT NULL,
  connection_id         text        NOT NULL,
  encrypted_credentials text        NOT NULL,
  key_id                text        NOT NULL CHECK (key_id <> ''),
  version               bigint      NOT NULL DEFAULT 1,
  expires_at            timestamptz,
  scopes                text[]      NOT NULL DEFAULT '{}',
  metadata              jsonb       NOT NULL DEFAULT '{}',
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  rotated_at            timestamptz,
  PRIMARY KEY (tenant_id, service, connection_id)
);

-- the start-up check reads one row per key id; rotation finds the rows not under the first key
CREATE INDEX integration_credentials_key_id ON integration_credentials (key_id);
