-- NOTIFY_RETENTION purges rows read longer ago than the retention, the
-- longest read first, in batches: this index holds only read rows, so the
-- sweep reads just the rows it deletes, and unread rows (most writes) never
-- touch it.
CREATE INDEX notifications_read_age ON notifications (read_at_ms) WHERE read_at_ms > 0;
