-- Several push devices per (tenant, user, device type): a user has a browser
-- subscription per browser profile and a token per phone. A device is known
-- by its token, so registering the same token again changes nothing but its
-- time, and a push service's "this token is gone" deletes exactly that one.
-- Tokens may be long (a Web Push subscription is JSON), longer than a btree
-- key may be, so the key holds the token's SHA-256 (of its UTF-8), which the
-- driver computes.
ALTER TABLE devices DROP CONSTRAINT devices_pkey;
ALTER TABLE devices ADD COLUMN token_key bytea;
UPDATE devices SET token_key = sha256(convert_to(token, 'UTF8'));
ALTER TABLE devices ALTER COLUMN token_key SET NOT NULL;
ALTER TABLE devices ADD PRIMARY KEY (tenant_id, user_id, device_type, token_key);
