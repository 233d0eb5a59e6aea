"""The inbox's state rules, as pure functions on one row.

Every store applies exactly these rules (the memory store calls them; the
PostgreSQL store states the same in SQL, and the conformance suite holds the
two to each other):

- READ implies seen; UNREAD keeps seen_at and goes back to DELIVERED, or
  PENDING if no stream ever got the row, with read_at 0.
- ARCHIVED leaves read state alone; UNARCHIVED brings the row back.
- SNOOZED hides a visible row until ``snooze_until_ms``; waking (at that time,
  or UNSNOOZED) brings it back unseen and unread.
- ACTIONED records the action and implies READ.
"""

from __future__ import annotations

from dataclasses import dataclass

from notify.core.model import Mark, Notification, Status


@dataclass(frozen=True, slots=True)
class Change:
    """One MarkNotifications change, validated (``notify.core.commands``)."""

    mark: Mark
    snooze_until_ms: int = 0
    action_id: str = ""


def touchable(row: Notification, change: Change, now_ms: int) -> bool:
    """Whether a mark may reach the row at all: not expired, and not hidden (but
    snoozed rows for UNSNOOZED)."""
    if row.expires_at_ms and row.expires_at_ms <= now_ms:
        return False
    if not row.visible:
        return change.mark is Mark.UNSNOOZED and row.snoozed_until_ms > 0
    return change.mark is not Mark.UNSNOOZED


def apply(row: Notification, change: Change, now_ms: int) -> bool:
    """Applies the change in place; True when something changed."""
    mark = change.mark
    if mark is Mark.READ:
        return _read(row, now_ms)
    if mark is Mark.UNREAD:
        if row.status is not Status.READ:
            return False
        row.status = Status.DELIVERED if row.delivered_at_ms else Status.PENDING
        row.read_at_ms = 0
        return True
    if mark is Mark.SEEN:
        if row.seen_at_ms:
            return False
        row.seen_at_ms = now_ms
        return True
    if mark is Mark.ARCHIVED:
        if row.archived_at_ms:
            return False
        row.archived_at_ms = now_ms
        return True
    if mark is Mark.UNARCHIVED:
        if not row.archived_at_ms:
            return False
        row.archived_at_ms = 0
        return True
    if mark is Mark.SNOOZED:
        if not row.visible:
            return False
        row.visible = False
        row.snoozed_until_ms = change.snooze_until_ms
        return True
    if mark is Mark.UNSNOOZED:
        if row.visible or not row.snoozed_until_ms:
            return False
        wake(row)
        return True
    if mark is Mark.ACTIONED:
        if row.action_id == change.action_id and row.actioned_at_ms:
            return False
        if change.action_id not in {a.id for a in row.actions}:
            return False
        row.actioned_at_ms = now_ms
        row.action_id = change.action_id
        _read(row, now_ms)
        return True
    raise ValueError(f"unknown mark {mark!r}")


def wake(row: Notification) -> None:
    """A snoozed row comes back: visible, unseen and unread."""
    row.visible = True
    row.snoozed_until_ms = 0
    row.seen_at_ms = 0
    if row.status is Status.READ:
        row.status = Status.DELIVERED if row.delivered_at_ms else Status.PENDING
        row.read_at_ms = 0


def _read(row: Notification, now_ms: int) -> bool:
    changed = False
    if row.status is not Status.READ:
        row.status = Status.READ
        row.read_at_ms = now_ms
        changed = True
    if not row.seen_at_ms:
        row.seen_at_ms = now_ms
        changed = True
    return changed
