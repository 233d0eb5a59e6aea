-- One row per (tenant, user, notification_id, channel): the producer's retry
-- of the same notification can never store a second copy.
CREATE TABLE notifications (
    id              uuid     PRIMARY KEY,
    tenant_id       text     NOT NULL,
    user_id         text     NOT NULL,
    notification_id text     NOT NULL,
    channel         smallint NOT NULL,
    subject_ref     text     NOT NULL,
    subject_type    text     NOT NULL,
    title           text     NOT NULL,
    body            text     NOT NULL,
    status          smallint NOT NULL,
    created_at_ms   bigint   NOT NULL,
    delivered_at_ms bigint   NOT NULL DEFAULT 0,
    ack_at_ms       bigint   NOT NULL DEFAULT 0,
    read_at_ms      bigint   NOT NULL DEFAULT 0,
    CONSTRAINT notifications_once UNIQUE (tenant_id, user_id, notification_id, channel)
);

-- The inbox: newest first per (tenant, user), ties broken by id, so a keyset
-- page is one index range scan however deep the history goes. Resume reads
-- the same index forwards.
CREATE INDEX notifications_inbox
    ON notifications (tenant_id, user_id, created_at_ms DESC, id DESC);

-- The unread-only inbox: only rows below READ (4) are in it.
CREATE INDEX notifications_inbox_unread
    ON notifications (tenant_id, user_id, created_at_ms DESC, id DESC)
    WHERE status < 4;

-- The unread count per user, kept by statement-level triggers, so reading it
-- is one primary-key lookup and never a scan of the user's rows.
CREATE TABLE unread_counts (
    tenant_id text   NOT NULL,
    user_id   text   NOT NULL,
    unread    bigint NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE FUNCTION notifications_count_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO unread_counts (tenant_id, user_id, unread)
    SELECT tenant_id, user_id, count(*) FROM inserted WHERE status < 4
    GROUP BY tenant_id, user_id
    ORDER BY tenant_id, user_id  -- a fixed lock order: no deadlocks between batches
    ON CONFLICT (tenant_id, user_id)
    DO UPDATE SET unread = unread_counts.unread + EXCLUDED.unread;
    RETURN NULL;
END $$;

CREATE TRIGGER notifications_count_inserted
    AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_count_inserted();

CREATE FUNCTION notifications_count_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH delta AS (
        SELECT n.tenant_id, n.user_id,
               sum((n.status < 4)::int - (o.status < 4)::int) AS change
        FROM updated_new n JOIN updated_old o ON o.id = n.id
        GROUP BY n.tenant_id, n.user_id
    )
    UPDATE unread_counts c SET unread = c.unread + d.change
    FROM (SELECT * FROM delta WHERE change <> 0 ORDER BY tenant_id, user_id) d
    WHERE c.tenant_id = d.tenant_id AND c.user_id = d.user_id;
    RETURN NULL;
END $$;

CREATE TRIGGER notifications_count_updated
    AFTER UPDATE ON notifications
    REFERENCING OLD TABLE AS updated_old NEW TABLE AS updated_new
    FOR EACH STATEMENT EXECUTE FUNCTION notifications_count_updated();

-- One push token per (tenant, user, device type): a new token rotates it in place.
CREATE TABLE devices (
    tenant_id     text     NOT NULL,
    user_id       text     NOT NULL,
    device_type   smallint NOT NULL,
    token         text     NOT NULL,
    updated_at_ms bigint   NOT NULL,
    PRIMARY KEY (tenant_id, user_id, device_type)
);
