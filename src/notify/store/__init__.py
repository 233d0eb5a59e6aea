"""The Store interface every driver implements, and the driver factory.

A driver is a module of its own (``memory``, ``postgres``), opened only by
``notify.store.factory``: nothing above this package names a driver class.
The conformance suite in ``notify.store.conformance`` is importable, so
every driver (including one written outside this package) proves it behaves
like the others by running it unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from notify.core.inbox import Change
from notify.core.model import (
    Channel,
    Counts,
    Device,
    DeviceType,
    Filter,
    Notification,
    Page,
    PageKey,
    PageRequest,
    Status,
)
from notify.core.ports import Announcer
from notify.core.preferences import PreferenceRule, Preferences, TenantPreferences

TOO_FAR_BEHIND = (
    "the inbox changed more than this server keeps since that resume_token; "
    "page with GetNotifications and reconnect without a resume_token"
)

# Push devices a user may have of one type (browsers, Android phones, iPhones): each
# Notify to a push channel fans out to all of them, so the fan-out is bounded.
MAX_DEVICES_PER_TYPE = 10

# A driver's own gauges (for example its connection pool), by state label.
Gauges = Mapping[str, Callable[[], float]]


@dataclass(frozen=True, slots=True)
class StoredRow:
    """The row as stored for one requested row; ``created`` is False for a retry.

    ``replaced`` is the id of the row a collapse deleted in the same write.
    """

    row: Notification
    created: bool
    replaced: str = ""
    replaced_change: int = 0  # the change-log position of that deletion


@dataclass(frozen=True, slots=True)
class Selection:
    """Which of a user's rows a mark or delete covers: these ids, or what a filter selects."""

    ids: tuple[str, ...] = ()
    filter: Filter | None = None


@dataclass(frozen=True, slots=True)
class Changed:
    """The new state of the rows a mark changed, and the user's inbox counts after it.

    ``change`` is the change-log position of the last of these changes (0: none).
    """

    rows: list[Notification]
    counts: Counts
    change: int = 0


@dataclass(frozen=True, slots=True)
class Deleted:
    ids: list[str]
    counts: Counts
    change: int = 0


@dataclass(frozen=True, slots=True)
class LoggedChange:
    """One entry of a user's change log: the row changed, or was deleted."""

    seq: int
    row_id: str
    deleted: bool


@dataclass(frozen=True, slots=True)
class Due:
    """What ``run_due`` did: scheduled rows that came due, snoozed rows that woke, and rows
    deleted for expiry."""

    woken: list[Notification]
    expired: list[Notification]
    snoozed: list[Notification] = field(default_factory=list)
    # (tenant, user) -> the change-log position of that user's last change here
    changes: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Purged:
    """What ``purge_read`` deleted (NOTIFY_RETENTION), with each user's change-log position."""

    rows: list[Notification]
    # (tenant, user) -> the change-log position of that user's last delete here
    changes: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A claimed send: the row (its ``address`` and ``attempts`` so far) and when it was
    first due, which bounds its retries by age."""

    row: Notification
    first_due_ms: int


@dataclass(frozen=True, slots=True)
class SendResult:
    """What became of one claimed entry.

    DELIVERED or FAILED end it (the row takes that status); PENDING keeps it
    queued until ``retry_at_ms``. ``attempts`` counts this send; ``reason`` is
    the failure's (for PENDING, the transient error just met).
    """

    row_id: str
    status: Status
    attempts: int
    at_ms: int = 0
    provider_message_id: str = ""
    reason: str = ""
    retry_at_ms: int = 0


@dataclass(frozen=True, slots=True)
class OutboxDepth:
    """A channel's queued entries, and when the longest-waiting due one fell due (0: none)."""

    entries: int
    oldest_due_ms: int


class Store(Protocol):
    """Durable state: notification rows and device registrations.

    Every method is scoped by tenant (and user where it applies), so no call can
    reach another tenant's rows. Drivers raise ``notify.core.errors.Unavailable``
    when their backend cannot be reached.

    Rows that the reads return (``list_notifications``, ``get_notifications``,
    ``list_after``) are read-only: a driver may hand out the very objects it
    keeps (the memory store does, and changes a row by storing a changed copy
    in its place, so what was read stays as it was read). A caller that
    changes one works on ``row.copy()``.
    """

    driver: str

    async def create_notifications(
        self, rows: Sequence[Notification], announce: Announcer | None = None
    ) -> list[StoredRow]:
        """Inserts rows, idempotent on (tenant, user, notification_id, channel).

        Returns one StoredRow per input, in order: the new row, or the row that
        was already stored under that key. ``announce`` (a bus across
        processes) is called inside the insert's transaction with the rows
        this call created, and the NOTIFYs it answers are sent in that same
        transaction: they commit with the rows or not at all. A driver that
        serves one process only may ignore it.
        """
        ...

    async def mark_delivered(self, rows: Sequence[Notification], at_ms: int) -> None:
        """Moves PENDING rows to DELIVERED, stamping delivered_at_ms."""
        ...

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> Page:
        """What ``page.filter`` selects, newest first, strictly after ``page.after``; plus the
        user's inbox counts."""
        ...

    async def get_notifications(self, tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
        """The tenant's rows with these store ids, in the order asked; unknown ids are skipped."""
        ...

    async def list_after(
        self,
        tenant_id: str,
        user_id: str,
        after: PageKey,
        channel: Channel,
        limit: int,
        *,
        now_ms: int = 0,
    ) -> list[Notification]:
        """The user's visible rows on ``channel`` after ``after``, oldest first, at most
        ``limit``; with ``now_ms``, none that expired by then."""
        ...

    async def mark(
        self, tenant_id: str, user_id: str, selection: Selection, change: Change, now_ms: int
    ) -> Changed:
        """Applies ``notify.core.inbox`` rules to the selected rows (ids not the caller's are
        ignored); rows the change leaves as they were are not in the answer."""
        ...

    async def delete(
        self, tenant_id: str, user_id: str, selection: Selection, now_ms: int
    ) -> Deleted:
        """Deletes the selected rows; the answer names those that existed."""
        ...

    async def counts(self, tenant_id: str, user_id: str, filter: Filter, now_ms: int) -> Counts:
        """Counts of what the filter selects (the inbox's are kept, never counted row by row)."""
        ...

    async def inbox_counts(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Counts]:
        """The inbox counts of several users at once (users without rows: zeros)."""
        ...

    async def run_due(self, now_ms: int, limit: int) -> Due:
        """Makes visible the rows whose deliver_at or snooze has come, deletes expired rows.

        At most ``limit`` of each; with several replicas each row is handled once.
        """
        ...

    async def next_due_ms(self) -> int | None:
        """The earliest time ``run_due`` would have work, if any is scheduled."""
        ...

    async def purge_read(self, read_before_ms: int, now_ms: int, limit: int) -> Purged:
        """Deletes at most ``limit`` rows read before ``read_before_ms``, the longest read first.

        Each is logged as a delete at ``now_ms`` (resuming streams replay it) and
        leaves the counts; with several replicas each row is deleted once.
        """
        ...

    async def changes_after(
        self, tenant_id: str, user_id: str, after: int, limit: int
    ) -> list[LoggedChange]:
        """The user's logged changes after position ``after``, oldest first, at most ``limit``.

        Raises OutOfRange when entries after ``after`` have been trimmed away.
        """
        ...

    async def last_change(self, tenant_id: str, user_id: str) -> int:
        """The user's latest change-log position (0: none yet)."""
        ...

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        """Sets READ and read_at_ms once; None when the caller owns no such row."""
        ...

    async def upsert_device(self, device: Device) -> None:
        """One registration per (tenant, device type, token): the same token again only
        refreshes ``updated_at_ms``, and a token registered by another user of the tenant
        moves to this one (a shared browser or phone gets only its current user's pushes).
        A user keeps at most ``MAX_DEVICES_PER_TYPE`` devices of a type; registering one
        more drops the least recently registered."""
        ...

    async def delete_device(
        self, tenant_id: str, user_id: str, device_type: DeviceType, token: str
    ) -> bool:
        """Forgets one device (its push service said the token is gone); False if unknown."""
        ...

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
        """The user's devices, by device type, then token."""
        ...

    def gauges(self) -> Gauges:
        """Callables the metrics read at scrape time; empty when the driver has none."""
        ...

    async def ping(self) -> None:
        """Raises Unavailable when the backend cannot be reached."""
        ...

    async def close(self) -> None: ...

    # ------------------------------------------------------------ delivery

    async def claim_outbox(
        self, channel: Channel, now_ms: int, limit: int, lease_ms: int, token: str
    ) -> list[OutboxEntry]:
        """Leases up to ``limit`` due entries of ``channel`` (oldest due first) to ``token``
        until ``now_ms + lease_ms``; an entry leased to anybody else whose lease has not run
        out is never handed out, however many dispatchers claim at once."""
        ...

    async def finish_outbox(self, token: str, results: Sequence[SendResult]) -> list[str]:
        """Records the results of entries still leased to ``token`` (a lost lease is
        ignored: the new holder sends again) and answers the row ids recorded. A DELIVERED
        or FAILED result moves a PENDING row to that status and ends the entry; PENDING
        requeues it at ``retry_at_ms``. Attempts, reason and message id go on the row."""
        ...

    async def release_outbox(self, token: str, row_ids: Sequence[str]) -> None:
        """Gives leased entries back unsent (graceful shutdown): claimable again at once."""
        ...

    async def outbox_depth(self, now_ms: int) -> dict[Channel, OutboxDepth]:
        """Queued entries by channel (channels with none are left out)."""
        ...

    async def preferences_for(
        self, tenant_id: str, user_ids: Sequence[str]
    ) -> dict[str, Preferences]:
        """Every named user's rules, each with the tenant's defaults and required categories."""
        ...

    async def update_preferences(
        self,
        tenant_id: str,
        user_id: str,
        rules: Sequence[PreferenceRule],
        *,
        replace: bool,
    ) -> Preferences:
        """Merges ``rules`` into the user's by (category, channel), or replaces them all;
        answers the result (rules sorted by key)."""
        ...

    async def set_tenant_preferences(self, tenant_id: str, tenant: TenantPreferences) -> None:
        """Replaces the tenant's defaults and required categories."""
        ...
