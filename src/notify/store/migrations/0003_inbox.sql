-- The inbox: a rich payload, seen/read/archived/snoozed state, scheduling,
-- expiry and collapse, and counts kept per user for the inbox as the user
-- sees it (in-app, visible, not archived): unread, unseen and total.
ALTER TABLE notifications
    ADD COLUMN severity         smallint NOT NULL DEFAULT 0,
    ADD COLUMN category         text     NOT NULL DEFAULT '',
    ADD COLUMN actions          jsonb    NOT NULL DEFAULT '[]',
    ADD COLUMN data             text     NOT NULL DEFAULT '',
    ADD COLUMN tags             jsonb    NOT NULL DEFAULT '[]',
    ADD COLUMN image_url        text     NOT NULL DEFAULT '',
    ADD COLUMN expires_at_ms    bigint   NOT NULL DEFAULT 0,
    ADD COLUMN deliver_at_ms    bigint   NOT NULL DEFAULT 0,
    ADD COLUMN seen_at_ms       bigint   NOT NULL DEFAULT 0,
    ADD COLUMN archived_at_ms   bigint   NOT NULL DEFAULT 0,
    ADD COLUMN snoozed_until_ms bigint   NOT NULL DEFAULT 0,
    ADD COLUMN collapse_key     text     NOT NULL DEFAULT '',
    ADD COLUMN collapsed_count  bigint   NOT NULL DEFAULT 0,
    ADD COLUMN actioned_at_ms   bigint   NOT NULL DEFAULT 0,
    ADD COLUMN action_id        text     NOT NULL DEFAULT '',
    ADD COLUMN visible          boolean  NOT NULL DEFAULT true;

-- When time next changes a row: a hidden row comes due (deliver_at) or wakes
-- (snooze); a visible one expires. 0: never. The scheduler reads the index.
ALTER TABLE notifications ADD COLUMN due_at_ms bigint GENERATED ALWAYS AS (
    CASE WHEN NOT visible THEN greatest(deliver_at_ms, snoozed_until_ms) ELSE expires_at_ms END
) STORED;

CREATE INDEX notifications_due ON notifications (due_at_ms) WHERE due_at_ms > 0;

-- The default listing (the bell) and its unread tab: one range scan each.
CREATE INDEX notifications_bell
    ON notifications (tenant_id, user_id, created_at_ms DESC, id DESC)
    WHERE channel = 1 AND visible AND archived_at_ms = 0;
CREATE INDEX notifications_bell_unread
    ON notifications (tenant_id, user_id, created_at_ms DESC, id DESC)
    WHERE channel = 1 AND visible AND archived_at_ms = 0 AND status < 4;

-- Collapse finds the user's unread, unarchived in-app row with a key.
CREATE INDEX notifications_collapse
    ON notifications (tenant_id, user_id, collapse_key)
    WHERE collapse_key <> '' AND channel = 1 AND status < 4 AND archived_at_ms = 0;

-- The old all-channel unread count gives way to the inbox counts.
DROP TRIGGER notifications_count_inserted ON notifications;
DROP TRIGGER notifications_count_updated ON notifications;
DROP FUNCTION notifications_count_inserted();
DROP FUNCTION notifications_count_updated();
DROP TABLE unread_counts;

CREATE TABLE inbox_counts (
    tenant_id text   NOT NULL,
    user_id   text   NOT NULL,
    unread    bigint NOT NULL DEFAULT 0,
    unseen    bigint NOT NULL DEFAULT 0,
    total     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, user_id)
);

INSERT INTO inbox_counts (tenant_id, user_id, unread, unseen, total)
SELECT tenant_id, user_id,
       count(*) FILTER (WHERE status < 4), count(*) FILTER (WHERE seen_at_ms = 0), count(*)
FROM notifications
WHERE channel = 1 AND visible AND archived_at_ms = 0
GROUP BY tenant_id, user_id;

-- One function for every statement kind: the delta of each user's counts is
-- what the new rows contribute minus what the old rows did, summed per table
-- (no join between the transition tables: that made 0001's trigger O(n^2)).
CREATE FUNCTION inbox_counts_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO inbox_counts AS c (tenant_id, user_id, unread, unseen, total)
        SELECT tenant_id, user_id,
               count(*) FILTER (WHERE status < 4), count(*) FILTER (WHERE seen_at_ms = 0),
               count(*)
        FROM new_rows WHERE channel = 1 AND visible AND archived_at_ms = 0
        GROUP BY tenant_id, user_id
        ORDER BY tenant_id, user_id  -- a fixed lock order: no deadlocks between batches
        ON CONFLICT (tenant_id, user_id) DO UPDATE
        SET unread = c.unread + EXCLUDED.unread, unseen = c.unseen + EXCLUDED.unseen,
            total = c.total + EXCLUDED.total;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE inbox_counts c
        SET unread = c.unread - d.unread, unseen = c.unseen - d.unseen, total = c.total - d.total
        FROM (
            SELECT tenant_id, user_id,
                   count(*) FILTER (WHERE status < 4) AS unread,
                   count(*) FILTER (WHERE seen_at_ms = 0) AS unseen, count(*) AS total
            FROM old_rows WHERE channel = 1 AND visible AND archived_at_ms = 0
            GROUP BY tenant_id, user_id ORDER BY tenant_id, user_id
        ) d
        WHERE c.tenant_id = d.tenant_id AND c.user_id = d.user_id;
    ELSE
        INSERT INTO inbox_counts AS c (tenant_id, user_id, unread, unseen, total)
        SELECT tenant_id, user_id, sum(unread), sum(unseen), sum(total)
        FROM (
            SELECT tenant_id, user_id, (status < 4)::int AS unread,
                   (seen_at_ms = 0)::int AS unseen, 1 AS total
            FROM new_rows WHERE channel = 1 AND visible AND archived_at_ms = 0
            UNION ALL
            SELECT tenant_id, user_id, -(status < 4)::int, -(seen_at_ms = 0)::int, -1
            FROM old_rows WHERE channel = 1 AND visible AND archived_at_ms = 0
        ) AS changes
        GROUP BY tenant_id, user_id
        HAVING sum(unread) <> 0 OR sum(unseen) <> 0 OR sum(total) <> 0
        ORDER BY tenant_id, user_id
        ON CONFLICT (tenant_id, user_id) DO UPDATE
        SET unread = c.unread + EXCLUDED.unread, unseen = c.unseen + EXCLUDED.unseen,
            total = c.total + EXCLUDED.total;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER inbox_counts_inserted AFTER INSERT ON notifications
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inbox_counts_changed();
CREATE TRIGGER inbox_counts_updated AFTER UPDATE ON notifications
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inbox_counts_changed();
CREATE TRIGGER inbox_counts_deleted AFTER DELETE ON notifications
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION inbox_counts_changed();
