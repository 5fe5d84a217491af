-- Webhook signing secrets encrypted at rest, and rotation (inspections/notifications/).
-- *_encrypted hold nonce + AES-256-GCM ciphertext (webhook_secrets.py); the key is in the
-- settings, never in the database. The plain-text column stays only for rows written before
-- this migration: the app seals and clears them at start-up.
alter table webhooks
    alter column secret drop not null,
    add column secret_encrypted bytea,
    -- The secret a rotation replaced: deliveries are signed with it too until then.
    add column previous_secret_encrypted bytea,
    add column previous_secret_until timestamptz,
    add constraint webhooks_secret_kept check (secret is not null or secret_encrypted is not null);
