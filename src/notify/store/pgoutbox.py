"""SQL for delivery on PostgreSQL: the outbox (claims, results, releases) and preferences.

Entries are queued by a trigger on insert (migrations/0005_delivery.sql).
A claim takes due entries with ``FOR UPDATE SKIP LOCKED`` and stamps a lease
in the same statement, so concurrent dispatchers (in one process or many)
split the due entries between them and never take one another's; the lease,
not a held lock, is what keeps an entry taken while its send runs, so no
transaction stays open across a send. Results are recorded only while the
caller's token still holds the entry.
"""

from __future__ import annotations

from notify.store import pgcolumns as columns

_ROW_COLUMNS = ", ".join(f"n.{c.name}" for c in columns.COLUMNS)

CLAIM = f"""
WITH due AS (
    SELECT row_id FROM notify_outbox
    WHERE channel = $1 AND due_at_ms <= $2 AND lease_until_ms <= $2
    ORDER BY due_at_ms
    LIMIT $3
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notify_outbox o SET lease_until_ms = $2 + $4, lease_token = $5
    FROM due WHERE o.row_id = due.row_id
    RETURNING o.row_id, o.first_due_ms, o.due_at_ms
)
SELECT {_ROW_COLUMNS}, claimed.first_due_ms
FROM claimed JOIN notifications n ON n.id = claimed.row_id
ORDER BY claimed.due_at_ms, n.id
"""

# One statement records every result of a batch: the entries still held by
# the token are ended (DELIVERED, FAILED) or requeued (PENDING), and their
# rows take the outcome. A row that left PENDING meanwhile keeps its status.
FINISH = """
WITH r AS (
    SELECT * FROM unnest($2::uuid[], $3::smallint[], $4::bigint[], $5::bigint[], $6::text[],
                         $7::text[], $8::bigint[])
        AS r(id, status, attempts, at_ms, message_id, reason, retry_at_ms)
), held AS (
    SELECT o.row_id FROM notify_outbox o JOIN r ON o.row_id = r.id
    WHERE o.lease_token = $1
    FOR UPDATE OF o
), ended AS (
    DELETE FROM notify_outbox o USING r, held
    WHERE o.row_id = r.id AND held.row_id = r.id AND r.status <> 1
    RETURNING o.row_id
), requeued AS (
    UPDATE notify_outbox o SET due_at_ms = r.retry_at_ms, lease_until_ms = 0, lease_token = NULL
    FROM r, held
    WHERE o.row_id = r.id AND held.row_id = r.id AND r.status = 1
    RETURNING o.row_id
)
UPDATE notifications n SET
    status = CASE WHEN n.status = 1 THEN r.status ELSE n.status END,
    delivered_at_ms = CASE WHEN n.status = 1 AND r.status = 2 THEN r.at_ms
                           ELSE n.delivered_at_ms END,
    attempts = r.attempts,
    failure_reason = r.reason,
    provider_message_id = r.message_id
FROM r
WHERE n.id = r.id AND n.id IN (SELECT row_id FROM ended UNION ALL SELECT row_id FROM requeued)
RETURNING n.id
"""

RELEASE = """
UPDATE notify_outbox SET lease_until_ms = 0, lease_token = NULL
WHERE row_id = ANY($2::uuid[]) AND lease_token = $1
"""

DEPTH = """
SELECT channel, count(*) AS entries,
       coalesce(min(due_at_ms) FILTER (WHERE due_at_ms <= $1), 0) AS oldest_due_ms
FROM notify_outbox GROUP BY channel
"""

# The users' rules and their tenant's, in one round trip (Notify reads it on every call).
PREFERENCES = """
SELECT
    (SELECT defaults::text FROM notify_tenant_preferences WHERE tenant_id = $1),
    (SELECT required_categories::text FROM notify_tenant_preferences WHERE tenant_id = $1),
    (SELECT json_agg(json_build_array(user_id, category, channel, enabled)
                     ORDER BY user_id, category, channel)::text
     FROM notify_preferences WHERE tenant_id = $1 AND user_id = ANY($2::text[]))
"""

DELETE_USER_RULES = "DELETE FROM notify_preferences WHERE tenant_id = $1 AND user_id = $2"

UPSERT_USER_RULES = """
INSERT INTO notify_preferences (tenant_id, user_id, category, channel, enabled)
SELECT $1, $2, * FROM unnest($3::text[], $4::smallint[], $5::boolean[])
ON CONFLICT (tenant_id, user_id, category, channel) DO UPDATE SET enabled = EXCLUDED.enabled
"""

SET_TENANT = """
INSERT INTO notify_tenant_preferences (tenant_id, defaults, required_categories)
VALUES ($1, $2::jsonb, $3::jsonb)
ON CONFLICT (tenant_id) DO UPDATE
SET defaults = EXCLUDED.defaults, required_categories = EXCLUDED.required_categories
"""
