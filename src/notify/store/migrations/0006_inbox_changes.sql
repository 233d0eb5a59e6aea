-- The inbox's change log: every state change of a user's row (a mark, a
-- delete, a collapse, a snooze waking, a scheduled row coming due, an
-- expiry), in one order, so a resuming stream replays exactly the changes it
-- missed. Rows are kept for a week (the scheduler's sweep trims older ones).
CREATE TABLE inbox_changes (
    seq       bigserial PRIMARY KEY,
    tenant_id text      NOT NULL,
    user_id   text      NOT NULL,
    row_id    uuid      NOT NULL,
    deleted   boolean   NOT NULL,
    at_ms     bigint    NOT NULL
);

CREATE INDEX inbox_changes_by_user ON inbox_changes (tenant_id, user_id, seq);
CREATE INDEX inbox_changes_by_age ON inbox_changes (at_ms);
