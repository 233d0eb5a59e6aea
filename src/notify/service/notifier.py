"""The orchestrator: every use case, over the store, the providers and the bus.

Transports call in with validated commands (``notify.core.commands``) and the
caller's principal; the Notifier decides, and calls the store, the channel
providers and the bus. Nothing here knows about HTTP, protobuf or Connect,
nor which store or bus driver runs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from typing import Any

from notify.auth import Principal
from notify.core.clock import Clock
from notify.core.commands import (
    DataChangeAck,
    DataChangeCommand,
    DeleteCommand,
    MarkCommand,
    NotifyCommand,
    build_device,
    build_row_id,
)
from notify.core.errors import InvalidArgument, NotFound, OutOfRange
from notify.core.events import (
    DataChangeAcked,
    DataChangePublished,
    DataChangeReached,
    InboxChanged,
    Reply,
)
from notify.core.ids import new_id
from notify.core.model import (
    Channel,
    Counts,
    DeviceType,
    Filter,
    Mark,
    Notification,
    NotifyOutcome,
    Page,
    PageKey,
    PageRequest,
    Status,
)
from notify.core.ports import Delivery, Receipt
from notify.core.preferences import (
    PreferenceRule,
    Preferences,
    TenantPreferences,
    normalise_rules,
)
from notify.core.ratelimit import RateLimiter
from notify.delivery.inapp import InAppProvider, InAppSend, pushable
from notify.delivery.registry import ProviderRegistry
from notify.metrics import Metrics
from notify.realtime.bus import BusClient
from notify.realtime.hub import Hub, Session
from notify.store import Changed, Deleted, Purged, Selection, Store

# A resume replays at most this many missed notifications by default; a
# client further behind is told OUT_OF_RANGE and pages its inbox instead.
DEFAULT_MAX_REPLAY = 10_000
# How often NOTIFY_RETENTION's sweep looks for rows to purge, once none are left.
PURGE_INTERVAL_MS = 60_000
# Channels whose rows keep the producer's collapse_key.
_COLLAPSING = frozenset({Channel.IN_APP, Channel.WEB_PUSH, Channel.MOBILE_PUSH})


class Notifier:
    def __init__(
        self,
        store: Store,
        providers: ProviderRegistry,
        bus: BusClient,
        hub: Hub,
        metrics: Metrics,
        clock: Clock,
        *,
        max_replay: int = DEFAULT_MAX_REPLAY,
        recipients: RateLimiter | None = None,
        retention_ms: int = 0,
        allow_insecure_webpush: bool = False,
    ) -> None:
        self.store = store
        self.providers = providers
        self._bus = bus
        self._hub = hub
        self._metrics = metrics
        self._clock = clock
        self._max_replay = max_replay
        self._recipients = recipients
        self._retention_ms = retention_ms
        # Browser subscriptions may name http:// loopback endpoints (tests only).
        self._allow_insecure_webpush = allow_insecure_webpush
        self._next_purge_ms = 0
        # Called when a write may have brought the next due time forward (the scheduler).
        self.on_schedule: Callable[[], None] | None = None
        # Called when a Notify queued external sends (the dispatcher).
        self.on_outbox: Callable[[], None] | None = None
        # Label children bound on first use (an unused pair exposes no series).
        self._stored: dict[tuple[Channel, Status], Any] = {}

    async def notify(self, command: NotifyCommand) -> NotifyOutcome:
        """Stores one row per (user, channel), then hands new rows to their providers.

        A retry finds the rows already stored: it creates and sends nothing and
        reports the stored statuses again. A channel without a provider keeps
        its rows PENDING.
        """
        if self._recipients is not None:
            self._recipients.take(command.tenant_id, len(command.user_ids))
        created_at = self._clock.now_ms()
        channels = command.channels or self.providers.active_channels
        p = command.payload
        preferences = await self.store.preferences_for(command.tenant_id, command.user_ids)
        wanted = [
            (user_id, channel)
            for user_id in command.user_ids
            for channel in channels
            if preferences[user_id].enabled(p.category, channel)
        ]
        rows = [
            Notification(
                id=new_id(created_at),
                tenant_id=command.tenant_id,
                user_id=user_id,
                notification_id=command.notification_id,
                channel=channel,
                subject_ref=command.subject_ref,
                subject_type=command.subject_type,
                title=command.title,
                body=command.body,
                status=Status.PENDING,
                created_at_ms=created_at,
                severity=p.severity,
                category=p.category,
                actions=p.actions,
                data=p.data,
                tags=p.tags,
                image_url=p.image_url,
                expires_at_ms=p.expires_at_ms,
                deliver_at_ms=p.deliver_at_ms,
                # In-app rows collapse in the inbox; push rows pass the key on to
                # the push service (a newer push replaces the older on the device).
                collapse_key=p.collapse_key if channel in _COLLAPSING else "",
                collapsed_count=1 if p.collapse_key and channel is Channel.IN_APP else 0,
                # A row for later stays out of sight until the scheduler brings it.
                visible=not p.deliver_at_ms,
                # External rows are sent from the outbox, to this address.
                address=command.address(user_id, channel),
            )
            for user_id, channel in wanted
        ]
        in_app = self._prepare_in_app(rows)
        try:
            stored = await self.store.create_notifications(
                rows, announce=in_app.announce if in_app is not None else None
            )
            for item in stored:
                if item.replaced:
                    self._bus.tell(
                        InboxChanged(
                            item.row.tenant_id,
                            item.row.user_id,
                            deleted_ids=(item.replaced,),
                            change=item.replaced_change,
                        )
                    )
            created = [s.row for s in stored if s.created and s.row.visible]
            await self._send(command.address, created, in_app)
        finally:
            if in_app is not None:
                in_app.release()  # the write failed, or created nothing to push
        if p.deliver_at_ms or p.expires_at_ms:
            self._schedule()
        if self.on_outbox is not None and any(
            s.created and s.row.channel is not Channel.IN_APP for s in stored
        ):
            self.on_outbox()
        counts = {Status.DELIVERED: 0, Status.PENDING: 0, Status.FAILED: 0}
        for item in stored:
            status = item.row.status
            # External rows are counted by the dispatcher, at their final status.
            if item.created and item.row.channel is Channel.IN_APP:
                self._stored_counter(item.row.channel, status).inc()
            if status in counts:
                counts[status] += 1
            elif status is Status.READ:
                counts[Status.DELIVERED] += 1  # a retry: the user already has it
        return NotifyOutcome(
            delivered=counts[Status.DELIVERED],
            pending=counts[Status.PENDING],
            failed=counts[Status.FAILED],
            skipped=len(command.user_ids) * len(channels) - len(rows),
        )

    def _prepare_in_app(self, rows: Sequence[Notification]) -> InAppSend | None:
        """The in-app send of new rows, announced in the store's insert transaction.

        So the other replicas hear of exactly the rows that committed, in
        the commit itself (no process can die between the two), and a Notify
        pays no second round trip for the announcement.
        """
        provider = self.providers.get(Channel.IN_APP)
        if not isinstance(provider, InAppProvider) or not any(pushable(r) for r in rows):
            return None
        return provider.prepare()

    def _stored_counter(self, channel: Channel, status: Status) -> Any:
        child = self._stored.get((channel, status))
        if child is None:
            child = self._stored[(channel, status)] = self._metrics.notifications_stored.labels(
                channel=channel.name.lower(), status=status.name.lower()
            )
        return child

    async def _send(
        self,
        address: Callable[[str, Channel], str],
        rows: Sequence[Notification],
        in_app: InAppSend | None = None,
    ) -> None:
        """Offers rows to their channel's provider; records who delivered, then tells the
        users' open streams their new counts. ``in_app``: the in-app rows' send, already
        announced with the store's write."""
        if not rows:
            return
        by_channel: dict[Channel, list[Notification]] = {}
        for row in rows:
            of = by_channel.get(row.channel)
            if of is None:
                by_channel[row.channel] = [row]
            else:
                of.append(row)
        delivered: dict[int, list[Notification]] = {}
        online: dict[str, set[str]] = {}  # tenant -> users a stream took a row for
        for channel, of_channel in by_channel.items():
            provider = self.providers.get(channel)
            if provider is None or channel is not Channel.IN_APP:
                continue  # external rows are the dispatcher's, from the outbox
            deliveries = [Delivery(row, "") for row in of_channel]  # in-app needs no address
            if in_app is not None:
                receipts = await in_app.send(deliveries)
            else:
                receipts = await provider.send(deliveries)
            for row, receipt in zip(of_channel, receipts, strict=True):
                if receipt.status is Status.DELIVERED:
                    _apply(row, receipt)
                    delivered.setdefault(receipt.at_ms, []).append(row)
                    if channel is Channel.IN_APP:
                        online.setdefault(row.tenant_id, set()).add(row.user_id)
        for at_ms, done in delivered.items():
            await self.store.mark_delivered(done, at_ms)
        for tenant_id, users in online.items():
            await self._tell_counts(tenant_id, users)

    async def _tell_counts(self, tenant_id: str, user_ids: Iterable[str]) -> None:
        counts = await self.store.inbox_counts(tenant_id, sorted(user_ids))
        for user_id, user_counts in counts.items():
            self._bus.tell(InboxChanged(tenant_id, user_id, counts=user_counts))

    def _schedule(self) -> None:
        if self.on_schedule is not None:
            self.on_schedule()

    # ------------------------------------------------------------ the inbox

    async def get_notification(self, principal: Principal, row_id: str) -> Notification:
        build_row_id(row_id)
        now = self._clock.now_ms()
        for row in await self.store.get_notifications(principal.tenant_id, [row_id]):
            if row.user_id == principal.user_id and _reachable(row, now):
                return row
        raise NotFound("no notification with that id")

    async def counts(self, principal: Principal, filter: Filter) -> Counts:
        return await self.store.counts(
            principal.tenant_id, principal.user_id, filter, self._clock.now_ms()
        )

    async def mark(self, principal: Principal, command: MarkCommand) -> Changed:
        now = self._clock.now_ms()
        change = command.change
        if change.mark is Mark.ACTIONED and command.selection_ids:
            # By ids, an action the row does not have is the caller's mistake.
            for row in await self.store.get_notifications(
                principal.tenant_id, command.selection_ids
            ):
                mine = row.user_id == principal.user_id and _reachable(row, now)
                if mine and change.action_id not in {a.id for a in row.actions}:
                    raise InvalidArgument(
                        f"action_id {change.action_id[:64]!r} is not an action of "
                        f"notification {row.id}"
                    )
        selection = Selection(command.selection_ids, command.selection_filter)
        changed = await self.store.mark(
            principal.tenant_id, principal.user_id, selection, change, now
        )
        if changed.rows:
            self._bus.tell(
                InboxChanged(
                    principal.tenant_id,
                    principal.user_id,
                    rows=tuple(changed.rows),
                    counts=changed.counts,
                    change=changed.change,
                )
            )
            if change.mark is Mark.SNOOZED:
                self._schedule()
        return changed

    async def delete(self, principal: Principal, command: DeleteCommand) -> Deleted:
        selection = Selection(command.selection_ids, command.selection_filter)
        deleted = await self.store.delete(
            principal.tenant_id, principal.user_id, selection, self._clock.now_ms()
        )
        if deleted.ids:
            self._bus.tell(
                InboxChanged(
                    principal.tenant_id,
                    principal.user_id,
                    deleted_ids=tuple(deleted.ids),
                    counts=deleted.counts,
                    change=deleted.change,
                )
            )
        return deleted

    async def run_due(self, limit: int = 1000) -> int:
        """Brings scheduled and snoozed rows whose time has come, removes expired ones.

        A scheduled row goes out like a new row (pushed, delivered, counted); a
        snoozed one comes back to the streams as an update. Returns how many
        rows changed.
        """
        now = self._clock.now_ms()
        due = await self.store.run_due(now, limit)
        purged = await self._purge_read(now, limit)
        await self._send(lambda user_id, channel: "", due.woken)
        changed: dict[tuple[str, str], tuple[list[Notification], list[str]]] = defaultdict(
            lambda: ([], [])
        )
        for row in due.snoozed:
            changed[(row.tenant_id, row.user_id)][0].append(row)
        for row in (*due.expired, *purged.rows):
            changed[(row.tenant_id, row.user_id)][1].append(row.id)
        by_tenant: dict[str, list[str]] = defaultdict(list)
        for (tenant_id, user_id), (rows, deleted) in changed.items():
            key = (tenant_id, user_id)
            change = max(due.changes.get(key, 0), purged.changes.get(key, 0))
            self._bus.tell(
                InboxChanged(tenant_id, user_id, tuple(rows), tuple(deleted), change=change)
            )
            by_tenant[tenant_id].append(user_id)
        for tenant_id, users in by_tenant.items():
            await self._tell_counts(tenant_id, users)
        return len(due.woken) + len(due.snoozed) + len(due.expired) + len(purged.rows)

    async def _purge_read(self, now_ms: int, limit: int) -> Purged:
        """NOTIFY_RETENTION: rows read longer ago than it, a batch per call while any are
        left, then again a minute later (they are not due at a time, so nothing pokes)."""
        if not self._retention_ms or now_ms < self._next_purge_ms:
            return Purged([])
        purged = await self.store.purge_read(now_ms - self._retention_ms, now_ms, limit)
        if len(purged.rows) < limit:
            self._next_purge_ms = now_ms + PURGE_INTERVAL_MS
        return purged

    async def next_due_ms(self) -> int | None:
        return await self.store.next_due_ms()

    async def list_notifications(self, principal: Principal, page: PageRequest) -> Page:
        page = replace(page, now_ms=self._clock.now_ms())
        return await self.store.list_notifications(principal.tenant_id, principal.user_id, page)

    async def mark_read(self, principal: Principal, row_id: str) -> Notification:
        """AckNotification: MARK_READ of one id; NOT_FOUND unless the caller can see it."""
        build_row_id(row_id)
        now = self._clock.now_ms()
        row = await self.store.mark_read(principal.tenant_id, principal.user_id, row_id, now)
        if row is None or not _reachable(row, now):
            raise NotFound("no notification with that id")
        if row.read_at_ms == now:  # it changed now: every open stream of the user hears of it
            counts = await self.store.inbox_counts(principal.tenant_id, [principal.user_id])
            change = await self.store.last_change(principal.tenant_id, principal.user_id)
            self._bus.tell(
                InboxChanged(
                    principal.tenant_id,
                    principal.user_id,
                    rows=(row,),
                    counts=counts[principal.user_id],
                    change=change,
                )
            )
        return row

    async def register_push_token(self, principal: Principal, device_type: int, token: str) -> None:
        device = build_device(
            tenant_id=principal.tenant_id,
            user_id=principal.user_id,
            device_type=device_type,
            token=token,
            now_ms=self._clock.now_ms(),
            allow_insecure_webpush=self._allow_insecure_webpush,
        )
        await self.store.upsert_device(device)

    def open_session(self, principal: Principal, device_type: DeviceType) -> Session:
        """Registers a live session; from now on it receives every push."""
        return self._hub.open(principal.tenant_id, principal.user_id, device_type)

    async def missed_since(self, principal: Principal, after: PageKey) -> list[Notification]:
        """The in-app rows created after ``after``, oldest first, for a resuming stream.

        Call it only after ``open_session``, so that nothing created meanwhile
        can fall between the replay and the live pushes. Replayed rows that were
        still PENDING are now delivered, and are stored as such.
        """
        limit = self._max_replay
        rows = await self.store.list_after(
            principal.tenant_id,
            principal.user_id,
            after,
            Channel.IN_APP,
            limit + 1,
            now_ms=self._clock.now_ms(),
        )
        if len(rows) > limit:
            raise OutOfRange(
                f"more than {limit} notifications were missed; "
                "page them with GetNotifications and reconnect without a resume_token"
            )
        if any(row.status is Status.PENDING for row in rows):
            # Read rows are the store's (read-only): the delivered ones are copies.
            rows = [row.copy() if row.status is Status.PENDING else row for row in rows]
            pending = [row for row in rows if row.status is Status.PENDING]
            delivered = Receipt(Status.DELIVERED, at_ms=self._clock.now_ms())
            for row in pending:
                _apply(row, delivered)
            await self.store.mark_delivered(pending, delivered.at_ms)
        return rows

    async def last_change(self, principal: Principal) -> int:
        return await self.store.last_change(principal.tenant_id, principal.user_id)

    async def missed_changes(
        self, principal: Principal, after: int, skip: AbstractSet[str]
    ) -> MissedChanges:
        """The state changes after change-log position ``after``, each row once, as it is now.

        Rows in ``skip`` (just replayed whole) are left out. Past the replay
        bound, OUT_OF_RANGE.
        """
        limit = self._max_replay
        entries = await self.store.changes_after(
            principal.tenant_id, principal.user_id, after, limit + 1
        )
        if len(entries) > limit:
            raise OutOfRange(
                f"more than {limit} inbox changes were missed; "
                "page with GetNotifications and reconnect without a resume_token"
            )
        last: dict[str, bool] = {}
        for entry in entries:
            last[entry.row_id] = entry.deleted
        deleted = tuple(row_id for row_id, gone in last.items() if gone)
        wanted = [row_id for row_id, gone in last.items() if not gone and row_id not in skip]
        rows = tuple(
            row
            for row in await self.store.get_notifications(principal.tenant_id, wanted)
            if row.user_id == principal.user_id
        )
        return MissedChanges(rows, deleted, entries[-1].seq if entries else after)

    # ------------------------------------------------------------ preferences

    async def get_preferences(self, principal: Principal) -> Preferences:
        found = await self.store.preferences_for(principal.tenant_id, [principal.user_id])
        return found[principal.user_id]

    async def update_preferences(
        self, principal: Principal, rules: Sequence[PreferenceRule], *, replace: bool
    ) -> Preferences:
        return await self.store.update_preferences(
            principal.tenant_id, principal.user_id, rules, replace=replace
        )

    async def set_tenant_preferences(
        self,
        tenant_id: str,
        defaults: Sequence[PreferenceRule],
        required_categories: Sequence[str],
    ) -> None:
        await self.store.set_tenant_preferences(
            tenant_id, TenantPreferences(normalise_rules(defaults), tuple(required_categories))
        )

    async def publish_data_change(self, command: DataChangeCommand) -> int:
        """Hints every live session of the users, on every replica; see DataChangeRounds."""
        replies: list[Reply] = await self._bus.ask(
            lambda origin, ticket: DataChangePublished(origin, ticket, command)
        )
        return sum(r.sessions for r in replies if isinstance(r, DataChangeReached))

    def ack_data_change(self, principal: Principal, ack: DataChangeAck) -> None:
        """Stops redelivery of a data-change hint to one of the caller's sessions.

        The ack is addressed by the caller's own (tenant, user): one naming a
        session the caller does not own changes nothing, and answers exactly
        like any other ack (no existence leak).
        """
        self._bus.tell(
            DataChangeAcked(
                principal.tenant_id, principal.user_id, ack.session_id, ack.idempotency_key
            )
        )


@dataclass(frozen=True, slots=True)
class MissedChanges:
    rows: tuple[Notification, ...]
    deleted_ids: tuple[str, ...]
    change: int  # the position after them


def _reachable(row: Notification, now_ms: int) -> bool:
    """What a user can see of a row: visible (or snoozed), and not expired."""
    if row.expires_at_ms and row.expires_at_ms <= now_ms:
        return False
    return row.visible or row.snoozed_until_ms > 0


def _apply(row: Notification, receipt: Receipt) -> None:
    """Records a provider's answer on the row.

    Only DELIVERED changes a row today: the in-app provider answers DELIVERED
    or PENDING. Recording FAILED (and its reason) arrives with the providers
    that can fail, together with the store columns that keep it.
    """
    if receipt.status is Status.DELIVERED:
        row.status = Status.DELIVERED
        row.delivered_at_ms = receipt.at_ms
