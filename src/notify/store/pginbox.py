"""The inbox's SQL: filters, marks, collapse and time-driven changes.

Each rule of ``notify.core.inbox`` is stated once here as SQL; the
conformance suite holds it to the memory store's Python. Statement texts are
built per filter *shape* (which constraints are present), never from values,
so asyncpg's statement cache keeps one prepared statement per shape.
"""

from __future__ import annotations

from typing import Any

from notify.core.inbox import Change
from notify.core.model import ArchiveScope, Channel, Filter, Mark, ReadScope
from notify.store import Selection
from notify.store import pgcolumns as columns

N_COLUMNS = ", ".join(f"n.{c.name}" for c in columns.COLUMNS)
UNREAD_AGAIN = "CASE WHEN delivered_at_ms > 0 THEN 2 ELSE 1 END"


class Params:
    """Collects positional parameters: ``p.add(value)`` returns its ``$n``."""

    def __init__(self, *initial: Any) -> None:
        self.values: list[Any] = list(initial)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def filter_sql(filter: Filter, params: Params, now: str) -> list[str]:
    """Conditions selecting what the filter selects; literal where a partial index must match."""
    conditions = [f"(expires_at_ms = 0 OR expires_at_ms > {now})"]
    if filter.channels == (Channel.IN_APP,):
        conditions.append("channel = 1")
    elif filter.channels is not None:
        conditions.append(f"channel = ANY({params.add([int(c) for c in filter.channels])})")
    conditions.append("NOT visible AND snoozed_until_ms > 0" if filter.snoozed else "visible")
    if filter.archived is ArchiveScope.UNARCHIVED:
        conditions.append("archived_at_ms = 0")
    elif filter.archived is ArchiveScope.ARCHIVED:
        conditions.append("archived_at_ms <> 0")
    if filter.read is ReadScope.UNREAD:
        conditions.append("status < 4")
    elif filter.read is ReadScope.READ:
        conditions.append("status = 4")
    if filter.categories:
        conditions.append(f"category = ANY({params.add(list(filter.categories))}::text[])")
    if filter.severities:
        severities = [int(s) for s in filter.severities]
        conditions.append(f"severity = ANY({params.add(severities)}::smallint[])")
    if filter.tags:
        conditions.append(f"tags ?| {params.add(list(filter.tags))}::text[]")
    return conditions


def selection_sql(selection: Selection, params: Params, now: str) -> list[str]:
    """By ids (which must all be UUIDs), or what the filter selects."""
    if selection.filter is None:
        return [f"id = ANY({params.add(list(selection.ids))}::uuid[])"]
    return filter_sql(selection.filter, params, now)


def change_sql(change: Change, params: Params, now: str) -> tuple[str, list[str]]:
    """(SET clause, conditions under which the change changes something)."""
    read_now = (
        f"status = 4, read_at_ms = CASE WHEN status <> 4 THEN {now} ELSE read_at_ms END, "
        f"seen_at_ms = CASE WHEN seen_at_ms = 0 THEN {now} ELSE seen_at_ms END"
    )
    reachable = f"(expires_at_ms = 0 OR expires_at_ms > {now})"
    mark = change.mark
    if mark is Mark.READ:
        return read_now, [reachable, "visible", "(status <> 4 OR seen_at_ms = 0)"]
    if mark is Mark.UNREAD:
        return f"status = {UNREAD_AGAIN}, read_at_ms = 0", [reachable, "visible", "status = 4"]
    if mark is Mark.SEEN:
        return f"seen_at_ms = {now}", [reachable, "visible", "seen_at_ms = 0"]
    if mark is Mark.ARCHIVED:
        return f"archived_at_ms = {now}", [reachable, "visible", "archived_at_ms = 0"]
    if mark is Mark.UNARCHIVED:
        return "archived_at_ms = 0", [reachable, "visible", "archived_at_ms <> 0"]
    if mark is Mark.SNOOZED:
        until = params.add(change.snooze_until_ms)
        return f"visible = false, snoozed_until_ms = {until}", [reachable, "visible"]
    if mark is Mark.UNSNOOZED:
        return WAKE_SET, [reachable, "NOT visible", "snoozed_until_ms > 0"]
    if mark is Mark.ACTIONED:
        action = params.add(change.action_id)
        return (
            f"actioned_at_ms = {now}, action_id = {action}, {read_now}",
            [
                reachable,
                "visible",
                f"EXISTS (SELECT 1 FROM jsonb_array_elements(actions) a WHERE a->>0 = {action})",
                f"NOT (action_id = {action} AND actioned_at_ms > 0)",
            ],
        )
    raise ValueError(f"unknown mark {mark!r}")


# A snoozed row wakes visible, unseen and unread; a scheduled one just appears.
WAKE_SET = (
    "visible = true, snoozed_until_ms = 0, "
    "seen_at_ms = CASE WHEN snoozed_until_ms > 0 THEN 0 ELSE seen_at_ms END, "
    f"read_at_ms = CASE WHEN snoozed_until_ms > 0 AND status = 4 THEN 0 ELSE read_at_ms END, "
    f"status = CASE WHEN snoozed_until_ms > 0 AND status = 4 THEN {UNREAD_AGAIN} ELSE status END"
)

LOG = "INSERT INTO inbox_changes (tenant_id, user_id, row_id, deleted, at_ms)"

WAKE_DUE = f"""
WITH due AS (
    SELECT id, snoozed_until_ms > 0 AS was_snoozed FROM notifications
    WHERE due_at_ms > 0 AND due_at_ms <= $1 AND NOT visible
    ORDER BY due_at_ms LIMIT $2
    FOR UPDATE SKIP LOCKED
),
woken AS (
    UPDATE notifications SET {WAKE_SET}
    FROM due WHERE notifications.id = due.id
    RETURNING {", ".join(f"notifications.{c.name}" for c in columns.COLUMNS)}, due.was_snoozed
),
logged AS ({LOG} SELECT tenant_id, user_id, id, false, $1 FROM woken RETURNING row_id, seq)
SELECT woken.*, logged.seq AS change_seq FROM woken JOIN logged ON logged.row_id = woken.id
"""


def _delete_logged(chosen: str, at: str) -> str:
    """Deletes the rows ``chosen`` selects (locked, skipping rows another replica holds),
    logs each as a delete at ``at``, and returns them with their change-log positions."""
    return f"""
WITH chosen AS ({chosen} FOR UPDATE SKIP LOCKED),
gone AS (DELETE FROM notifications n USING chosen WHERE n.id = chosen.id RETURNING {N_COLUMNS}),
logged AS ({LOG} SELECT tenant_id, user_id, id, true, {at} FROM gone RETURNING row_id, seq)
SELECT gone.*, logged.seq AS change_seq FROM gone JOIN logged ON logged.row_id = gone.id
"""


# Visible rows whose expiry is due by $1, at most $2, logged at $1.
EXPIRE_DUE = _delete_logged(
    "SELECT id FROM notifications WHERE due_at_ms > 0 AND due_at_ms <= $1 AND visible "
    "ORDER BY due_at_ms LIMIT $2",
    "$1",
)

# NOTIFY_RETENTION: rows read before $1, longest read first (the partial index
# notifications_read_age), at most $2, each logged as a delete at $3.
PURGE_READ = _delete_logged(
    "SELECT id FROM notifications WHERE read_at_ms > 0 AND read_at_ms < $1 "
    "ORDER BY read_at_ms LIMIT $2",
    "$3",
)

# A week of changes is kept: resuming streams further back page their inbox.
TRIM_CHANGES = """
DELETE FROM inbox_changes WHERE seq IN (
    SELECT seq FROM inbox_changes WHERE at_ms < $1 ORDER BY at_ms LIMIT 10000
)
"""
CHANGE_LOG_AGE_MS = 7 * 24 * 3600 * 1000

CHANGES_AFTER = """
SELECT seq, row_id, deleted FROM inbox_changes
WHERE tenant_id = $1 AND user_id = $2 AND seq > $3
ORDER BY seq LIMIT $4
"""

LAST_CHANGE = """
SELECT max(seq) FROM inbox_changes WHERE tenant_id = $1 AND user_id = $2
"""

NEXT_DUE = "SELECT min(due_at_ms) FROM notifications WHERE due_at_ms > 0"

INBOX_COUNTS = """
SELECT unread, unseen, total FROM inbox_counts WHERE tenant_id = $1 AND user_id = $2
"""

MANY_INBOX_COUNTS = """
SELECT user_id, unread, unseen, total FROM inbox_counts
WHERE tenant_id = $1 AND user_id = ANY($2::text[])
"""

# Serialises collapses of one (tenant, user, key) across transactions, so two
# concurrent Notify calls with one key end with one row, not two.
COLLAPSE_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"

COLLAPSE = f"""
WITH old AS (
    DELETE FROM notifications o
    WHERE o.tenant_id = $1 AND o.user_id = $2 AND o.collapse_key = $3 AND o.id <> $4
      AND o.channel = 1 AND o.status < 4 AND o.archived_at_ms = 0
    RETURNING o.id, o.collapsed_count
),
logged AS ({LOG} SELECT $1::text, $2::text, id, true, $5::bigint FROM old RETURNING seq)
UPDATE notifications n
SET collapsed_count = greatest((SELECT max(collapsed_count) FROM old), 1) + 1
WHERE n.id = $4 AND EXISTS (SELECT 1 FROM old)
RETURNING (SELECT min(id::text) FROM old) AS replaced, n.collapsed_count,
    (SELECT max(seq) FROM logged) AS change_seq
"""
