"""What travels on the bus between the service and the live sessions.

Requests carry the ``origin`` replica and a ``ticket``; the replica that owns
a session answers with a reply addressed back to that (origin, ticket). With
the in-process bus the answer arrives before ``publish`` returns; a bus
across processes delivers it later, within its ``reply_wait``. Either way
the service learns what happened only from replies, so "delivered" means the
same thing however many replicas there are.
"""

from __future__ import annotations

from dataclasses import dataclass

from notify.core.commands import DataChangeCommand
from notify.core.model import Counts, Notification


@dataclass(frozen=True, slots=True)
class NotificationsCreated:
    """New in-app rows: offer each to its user's live sessions."""

    origin: str
    ticket: int
    rows: tuple[Notification, ...]
    # perf_counter_ns() when the rows were stored (delivery latency, this process only).
    stored_at_ns: int


@dataclass(frozen=True, slots=True)
class NotificationsTaken:
    """Reply: these rows reached at least one live session, stamped ``at_ms``."""

    origin: str
    ticket: int
    row_ids: tuple[str, ...]
    at_ms: int


@dataclass(frozen=True, slots=True)
class DataChangePublished:
    """Hint every live session of the command's users (and keep hinting until acked)."""

    origin: str
    ticket: int
    command: DataChangeCommand


@dataclass(frozen=True, slots=True)
class DataChangeReached:
    """Reply: how many sessions the first delivery of a hint reached."""

    origin: str
    ticket: int
    sessions: int


@dataclass(frozen=True, slots=True)
class DataChangeAcked:
    """A session's owner acknowledged a hint: stop redelivering it to that session."""

    tenant_id: str
    user_id: str
    session_id: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class InboxChanged:
    """A user's inbox changed: the new state of rows, deleted ids, and/or the counts."""

    tenant_id: str
    user_id: str
    rows: tuple[Notification, ...] = ()
    deleted_ids: tuple[str, ...] = ()
    counts: Counts | None = None
    change: int = 0  # the user's change-log position after it (0: not logged)


Request = NotificationsCreated | DataChangePublished
Reply = NotificationsTaken | DataChangeReached
BusEvent = (
    NotificationsCreated
    | NotificationsTaken
    | DataChangePublished
    | DataChangeReached
    | DataChangeAcked
    | InboxChanged
)
