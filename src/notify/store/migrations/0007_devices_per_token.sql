-- Several push devices per (tenant, user, device type): a user has a browser
-- subscription per browser profile and a token per phone. A device is known
-- by its token, so registering the same token again changes nothing but its
-- time, a push service's "this token is gone" deletes exactly that one, and a
-- token registered by another user of the tenant (a shared computer, a phone
-- handed on) moves to that user: a device gets only its current user's pushes.
-- Tokens may be long (a Web Push subscription is JSON), longer than a btree
-- key may be, so the key holds the token's SHA-256 (of its UTF-8), which the
-- driver computes.
ALTER TABLE devices DROP CONSTRAINT devices_pkey;
ALTER TABLE devices ADD COLUMN token_key bytea;
UPDATE devices SET token_key = sha256(convert_to(token, 'UTF8'));
ALTER TABLE devices ALTER COLUMN token_key SET NOT NULL;
-- A token two users registered before: the latest registration keeps it.
DELETE FROM devices AS older USING devices AS newer
WHERE older.tenant_id = newer.tenant_id AND older.device_type = newer.device_type
      AND older.token_key = newer.token_key
      AND (older.updated_at_ms, older.user_id) < (newer.updated_at_ms, newer.user_id);
ALTER TABLE devices ADD PRIMARY KEY (tenant_id, device_type, token_key);
CREATE INDEX devices_by_user ON devices (tenant_id, user_id, device_type);
