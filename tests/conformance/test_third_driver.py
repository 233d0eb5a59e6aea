"""A third driver, written here in a few lines, passes the same suite unchanged.

It proves the suite is importable and driver-agnostic: it knows nothing of
the memory or PostgreSQL drivers, only the Store protocol. The driver keeps
every row in one list and scans it, which is all a reference needs to be.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from notify.core import inbox as rules
from notify.core.model import (
    INBOX,
    Channel,
    Counts,
    Device,
    DeviceType,
    Filter,
    Notification,
    Page,
    PageKey,
    PageRequest,
    ReadScope,
    Status,
)
from notify.core.preferences import PreferenceRule, Preferences, TenantPreferences, merge_rules
from notify.store import (
    MAX_DEVICES_PER_TYPE,
    Changed,
    Deleted,
    Due,
    Gauges,
    LoggedChange,
    OutboxDepth,
    OutboxEntry,
    Purged,
    Selection,
    SendResult,
    Store,
    StoredRow,
)
from notify.store.conformance import *  # noqa: F403  (the suite's tests)


class ListStore:
    driver = "list"

    def __init__(self) -> None:
        self.log: list[tuple[str, str, LoggedChange]] = []  # (tenant, user, entry)
        self.rows: list[Notification] = []
        self.devices: dict[tuple[str, str, int, str], Device] = {}
        # row id -> [due_at_ms, first_due_ms, lease_until_ms, token]
        self.outbox: dict[str, list[Any]] = {}
        self.preferences: dict[tuple[str, str], tuple[PreferenceRule, ...]] = {}
        self.tenants: dict[str, TenantPreferences] = {}

    def _log(self, row: Notification, deleted: bool) -> int:
        seq = len(self.log) + 1
        self.log.append((row.tenant_id, row.user_id, LoggedChange(seq, row.id, deleted)))
        return seq

    async def changes_after(
        self, tenant_id: str, user_id: str, after: int, limit: int
    ) -> list[LoggedChange]:
        mine = [e for t, u, e in self.log if (t, u) == (tenant_id, user_id) and e.seq > after]
        return mine[:limit]

    async def last_change(self, tenant_id: str, user_id: str) -> int:
        mine = [e.seq for t, u, e in self.log if (t, u) == (tenant_id, user_id)]
        return mine[-1] if mine else 0

    def _mine(self, tenant_id: str, user_id: str) -> list[Notification]:
        return sorted(
            (r for r in self.rows if (r.tenant_id, r.user_id) == (tenant_id, user_id)),
            key=lambda r: r.key,
        )

    async def create_notifications(self, rows: Sequence[Notification]) -> list[StoredRow]:
        result = []
        for row in rows:
            same = [r for r in self.rows if _key(r) == _key(row)]
            if same:
                result.append(StoredRow(same[0].copy(), created=False))
                continue
            stored, replaced, logged = row.copy(), "", 0
            if row.collapse_key and row.channel is Channel.IN_APP:
                for old in self._mine(row.tenant_id, row.user_id):
                    if (
                        old.collapse_key == row.collapse_key
                        and old.channel is Channel.IN_APP
                        and old.status.unread
                        and not old.archived_at_ms
                    ):
                        stored.collapsed_count = max(old.collapsed_count, 1) + 1
                        self.rows.remove(old)
                        replaced = old.id
                        logged = self._log(old, True)
                        break
            self.rows.append(stored)
            if row.channel is not Channel.IN_APP and row.status is Status.PENDING:
                due = max(row.created_at_ms, row.deliver_at_ms)
                self.outbox[row.id] = [due, due, 0, ""]
            result.append(StoredRow(stored.copy(), True, replaced, logged if replaced else 0))
        return result

    async def mark_delivered(self, rows: Sequence[Notification], at_ms: int) -> None:
        ids = {r.id for r in rows}
        for row in self.rows:
            if row.id in ids and row.status is Status.PENDING:
                row.status, row.delivered_at_ms = Status.DELIVERED, at_ms

    def _counts(self, tenant_id: str, user_id: str, filter: Filter, now_ms: int) -> Counts:
        chosen = [r for r in self._mine(tenant_id, user_id) if filter.matches(r, now_ms)]
        return Counts(
            sum(r.status.unread for r in chosen),
            sum(not r.seen_at_ms for r in chosen),
            len(chosen),
        )

    def _inbox_counts(self, tenant_id: str, user_id: str) -> Counts:
        # The kept counts do not look at expiry: the scheduler removes expired rows.
        return self._counts(tenant_id, user_id, replace(INBOX), 0)

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> Page:
        filter = page.filter
        if page.unread_only and filter.read is ReadScope.ANY:
            filter = replace(filter, read=ReadScope.UNREAD)
        chosen = [r for r in self._mine(tenant_id, user_id) if filter.matches(r, page.now_ms)]
        older = [r for r in reversed(chosen) if page.after is None or r.key < page.after]
        rows = [r.copy() for r in older[: page.limit]]
        next_key = rows[-1].key if len(older) > page.limit else None
        return Page(rows=rows, next_key=next_key, counts=self._inbox_counts(tenant_id, user_id))

    async def get_notifications(self, tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
        by_id = {r.id: r for r in self.rows if r.tenant_id == tenant_id}
        return [by_id[i].copy() for i in row_ids if i in by_id]

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
        return [
            r.copy()
            for r in self._mine(tenant_id, user_id)
            if r.key > after
            and r.channel is channel
            and r.visible
            and not (r.expires_at_ms and r.expires_at_ms <= now_ms)
        ][:limit]

    def _select(
        self, tenant_id: str, user_id: str, selection: Selection, now_ms: int
    ) -> list[Notification]:
        mine = self._mine(tenant_id, user_id)
        if selection.filter is None:
            return [r for r in mine if r.id in selection.ids]
        return [r for r in mine if selection.filter.matches(r, now_ms)]

    async def mark(
        self, tenant_id: str, user_id: str, selection: Selection, change: rules.Change, now_ms: int
    ) -> Changed:
        changed = [
            r
            for r in self._select(tenant_id, user_id, selection, now_ms)
            if rules.touchable(r, change, now_ms) and rules.apply(r, change, now_ms)
        ]
        seq = max((self._log(r, False) for r in changed), default=0)
        counts = self._inbox_counts(tenant_id, user_id)
        return Changed([r.copy() for r in changed], counts, seq)

    async def delete(
        self, tenant_id: str, user_id: str, selection: Selection, now_ms: int
    ) -> Deleted:
        gone = self._select(tenant_id, user_id, selection, now_ms)
        for row in gone:
            self.rows.remove(row)
        seq = max((self._log(r, True) for r in gone), default=0)
        ids = [r.id for r in sorted(gone, key=lambda r: r.key, reverse=True)]
        return Deleted(ids, self._inbox_counts(tenant_id, user_id), seq)

    async def counts(self, tenant_id: str, user_id: str, filter: Filter, now_ms: int) -> Counts:
        if filter.is_inbox:
            return self._inbox_counts(tenant_id, user_id)
        return self._counts(tenant_id, user_id, filter, now_ms)

    async def inbox_counts(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Counts]:
        return {u: self._inbox_counts(tenant_id, u) for u in user_ids}

    async def run_due(self, now_ms: int, limit: int) -> Due:
        due = sorted(
            (r for r in self.rows if r.due_at_ms() and r.due_at_ms() <= now_ms),
            key=lambda r: r.due_at_ms(),
        )
        hidden = [r for r in due if not r.visible][:limit]
        expired = [r for r in due if r.visible][:limit]
        snoozed = [r for r in hidden if r.snoozed_until_ms]
        for row in hidden:
            if row.snoozed_until_ms:
                rules.wake(row)
            else:
                row.visible = True
        for row in expired:
            self.rows.remove(row)
        changes = {(r.tenant_id, r.user_id): self._log(r, r in expired) for r in hidden + expired}
        fresh = [r.copy() for r in hidden if r not in snoozed]
        return Due(fresh, [r.copy() for r in expired], [r.copy() for r in snoozed], changes)

    async def purge_read(self, read_before_ms: int, now_ms: int, limit: int) -> Purged:
        old = sorted(
            (r for r in self.rows if 0 < r.read_at_ms < read_before_ms),
            key=lambda r: (r.read_at_ms, r.id),
        )[:limit]
        for row in old:
            self.rows.remove(row)
        changes = {(r.tenant_id, r.user_id): self._log(r, True) for r in old}
        return Purged([r.copy() for r in old], changes)

    async def next_due_ms(self) -> int | None:
        return min((r.due_at_ms() for r in self.rows if r.due_at_ms()), default=None)

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        for row in self._mine(tenant_id, user_id):
            if row.id == row_id:
                if rules.apply(row, rules.Change(rules.Mark.READ), at_ms):
                    self._log(row, False)
                return row.copy()
        return None

    async def upsert_device(self, device: Device) -> None:
        for key in [
            k
            for k in self.devices
            if k[0] == device.tenant_id and k[2:] == (int(device.device_type), device.token)
        ]:
            del self.devices[key]  # one owner per token: it moves to this user
        kind = (device.tenant_id, device.user_id, int(device.device_type))
        self.devices[(*kind, device.token)] = device
        newest = sorted(
            (d for k, d in self.devices.items() if k[:3] == kind),
            key=lambda d: (d.updated_at_ms, d.token),
            reverse=True,
        )
        for old in newest[MAX_DEVICES_PER_TYPE:]:
            del self.devices[(*kind, old.token)]

    async def delete_device(
        self, tenant_id: str, user_id: str, device_type: DeviceType, token: str
    ) -> bool:
        key = (tenant_id, user_id, int(device_type), token)
        return self.devices.pop(key, None) is not None

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
        return [d for k, d in sorted(self.devices.items()) if k[:2] == (tenant_id, user_id)]

    def gauges(self) -> Gauges:
        return {}

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _row(self, row_id: str) -> Notification | None:
        return next((r for r in self.rows if r.id == row_id), None)

    async def claim_outbox(
        self, channel: Channel, now_ms: int, limit: int, lease_ms: int, token: str
    ) -> list[OutboxEntry]:
        claimed = []
        for row_id, entry in sorted(self.outbox.items(), key=lambda item: item[1][0]):
            row = self._row(row_id)
            if row is None or row.channel is not channel or len(claimed) == limit:
                continue
            if entry[0] <= now_ms and entry[2] <= now_ms:
                entry[2], entry[3] = now_ms + lease_ms, token
                claimed.append(OutboxEntry(row.copy(), entry[1]))
        return claimed

    async def finish_outbox(self, token: str, results: Sequence[SendResult]) -> list[str]:
        done = []
        for result in results:
            entry, row = self.outbox.get(result.row_id), self._row(result.row_id)
            if entry is None or row is None or entry[3] != token:
                continue
            if result.status is Status.PENDING:
                entry[0], entry[2], entry[3] = result.retry_at_ms, 0, ""
            else:
                del self.outbox[result.row_id]
                if row.status is Status.PENDING:
                    row.status = result.status
                    if result.status is Status.DELIVERED:
                        row.delivered_at_ms = result.at_ms
            row.attempts, row.failure_reason = result.attempts, result.reason
            row.provider_message_id = result.provider_message_id
            done.append(result.row_id)
        return done

    async def release_outbox(self, token: str, row_ids: Sequence[str]) -> None:
        for row_id in row_ids:
            entry = self.outbox.get(row_id)
            if entry is not None and entry[3] == token:
                entry[2], entry[3] = 0, ""

    async def outbox_depth(self, now_ms: int) -> dict[Channel, OutboxDepth]:
        found: dict[Channel, OutboxDepth] = {}
        for row_id, entry in self.outbox.items():
            row = self._row(row_id)
            if row is None:
                continue
            seen = found.get(row.channel, OutboxDepth(0, 0))
            due = [d for d in (seen.oldest_due_ms, entry[0]) if d and d <= now_ms]
            found[row.channel] = OutboxDepth(seen.entries + 1, min(due, default=0))
        return found

    async def preferences_for(
        self, tenant_id: str, user_ids: Sequence[str]
    ) -> dict[str, Preferences]:
        tenant = self.tenants.get(tenant_id, TenantPreferences())
        return {u: Preferences(self.preferences.get((tenant_id, u), ()), tenant) for u in user_ids}

    async def update_preferences(
        self,
        tenant_id: str,
        user_id: str,
        rules: Sequence[PreferenceRule],
        *,
        replace: bool,
    ) -> Preferences:
        current = self.preferences.get((tenant_id, user_id), ())
        self.preferences[(tenant_id, user_id)] = merge_rules(current, rules, replace=replace)
        return (await self.preferences_for(tenant_id, [user_id]))[user_id]

    async def set_tenant_preferences(self, tenant_id: str, tenant: TenantPreferences) -> None:
        self.tenants[tenant_id] = tenant


def _key(row: Notification) -> tuple[str, str, str, Channel]:
    return (row.tenant_id, row.user_id, row.notification_id, row.channel)


@pytest.fixture
def store() -> Store:
    return ListStore()
