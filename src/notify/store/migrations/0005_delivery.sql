-- Delivery to external channels (email, webhook, later push and SMS): the
-- outcome on the row, the outbox the dispatchers work from, and preferences.
ALTER TABLE notifications
    ADD COLUMN attempts            bigint NOT NULL DEFAULT 0,
    ADD COLUMN failure_reason      text   NOT NULL DEFAULT '',
    ADD COLUMN provider_message_id text   NOT NULL DEFAULT '',
    ADD COLUMN address             text   NOT NULL DEFAULT '';

-- One entry per external row still to send. It is written by a trigger in
-- the statement that inserts the row, so a Notify answered OK has its sends
-- queued in the same commit, whatever path inserted it. A dispatcher claims
-- due entries with FOR UPDATE SKIP LOCKED and holds them by a lease (its
-- token until lease_until_ms); an entry whose holder died is claimable again
-- once the lease runs out. A deleted or expired row takes its entry with it.
CREATE TABLE notify_outbox (
    row_id         uuid     PRIMARY KEY REFERENCES notifications (id) ON DELETE CASCADE,
    channel        smallint NOT NULL,
    due_at_ms      bigint   NOT NULL,
    first_due_ms   bigint   NOT NULL,
    lease_until_ms bigint   NOT NULL DEFAULT 0,
    lease_token    uuid
);

CREATE INDEX notify_outbox_due ON notify_outbox (channel, due_at_ms);

CREATE FUNCTION notify_outbox_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO notify_outbox (row_id, channel, due_at_ms, first_due_ms)
    SELECT id, channel, greatest(created_at_ms, deliver_at_ms), greatest(created_at_ms, deliver_at_ms)
    FROM inserted_rows
    WHERE channel <> 1 AND status = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER notifications_outbox_enqueue
    AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS inserted_rows
    FOR EACH STATEMENT EXECUTE FUNCTION notify_outbox_enqueue();

-- A user's rules: one per (category, channel); '' and 0 mean "any".
CREATE TABLE notify_preferences (
    tenant_id text     NOT NULL,
    user_id   text     NOT NULL,
    category  text     NOT NULL,
    channel   smallint NOT NULL,
    enabled   boolean  NOT NULL,
    PRIMARY KEY (tenant_id, user_id, category, channel)
);

-- A tenant's defaults ([[category, channel, enabled], ...]) and the
-- categories its users cannot opt out of.
CREATE TABLE notify_tenant_preferences (
    tenant_id           text  PRIMARY KEY,
    defaults            jsonb NOT NULL DEFAULT '[]',
    required_categories jsonb NOT NULL DEFAULT '[]'
);
