"""The PostgreSQL store, on an asyncpg connection pool.

Round trips are the cost that matters, so every operation is one statement
(two only when a Notify retry must read back rows another call stored):
inserts go in as arrays through ``unnest``, however many users a Notify
names, and the unread count is one primary-key lookup in ``unread_counts``,
kept by triggers (see migrations/0001_notifications.sql).

Connection trouble surfaces as ``Unavailable`` with a plain message, never a
driver traceback; asyncpg's pool replaces broken connections by itself, so
the service recovers when the database returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import asyncpg
import orjson

from notify.core.errors import InvalidArgument, NotifyError, Unavailable
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
    ReadScope,
)
from notify.core.ports import Announcer
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
    StoredRow,
    pginbox,
    pgoutbox,
    pgpages,
)
from notify.store import pgcolumns as columns
from notify.store.migrate import migrate
from notify.store.pginbox import Params

logger = logging.getLogger("notify.store.postgres")

_COLUMNS = columns.NAMES

_INSERT = f"""
INSERT INTO notifications ({_COLUMNS})
SELECT * FROM unnest({columns.UNNEST_ARGS})
ON CONFLICT (tenant_id, user_id, notification_id, channel) DO NOTHING
RETURNING id
"""

# The insert and its announcement in one statement, so one round trip and one
# commit: the NOTIFYs go out only if every row is new. If only some are (a retry
# among new rows, or two calls of a batch with one key), the division by zero
# fails the statement, nothing is stored, and the batch is written again in a
# transaction that announces exactly the rows it created. If none are, nothing
# is stored or announced.
_INSERT_ANNOUNCED = f"""
WITH created AS (
    INSERT INTO notifications ({_COLUMNS})
    SELECT * FROM unnest({columns.UNNEST_ARGS})
    ON CONFLICT (tenant_id, user_id, notification_id, channel) DO NOTHING
    RETURNING id
), announced AS (
    SELECT count(*) AS sent FROM (
        SELECT pg_notify(${len(columns.COLUMNS) + 1}, p)
        FROM unnest(${len(columns.COLUMNS) + 2}::text[]) AS p,
            (SELECT count(*) AS n FROM created) AS c
        WHERE CASE c.n WHEN ${len(columns.COLUMNS) + 3} THEN true WHEN 0 THEN false
            ELSE 1 / (c.n * 0) = 1 END
    ) AS s
)
SELECT id FROM created WHERE (SELECT sent FROM announced) >= 0
"""

# The announcement of a transaction that wrote in several statements.
_ANNOUNCE = "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p"

# Rows another call already stored under the same keys (a retry): read in a
# statement of its own, so it sees what a concurrent caller just committed.
_EXISTING = f"""
SELECT {_COLUMNS} FROM notifications n
JOIN unnest($1::text[], $2::text[], $3::text[], $4::smallint[]) AS k(t, u, nid, ch)
  ON n.tenant_id = k.t AND n.user_id = k.u AND n.notification_id = k.nid AND n.channel = k.ch
"""

_MARK_DELIVERED = """
UPDATE notifications SET status = 2, delivered_at_ms = $2
WHERE id = ANY($1::uuid[]) AND status = 1
"""

# The user's inbox counts as an array, beside every row of a page.
_PAGE_COUNTS = (
    "SELECT ARRAY[unread, unseen, total] FROM inbox_counts "
    "WHERE tenant_id = {tenant} AND user_id = {user}"
)
# A page and the user's inbox counts, in one round trip.
_PAGE = f"""
SELECT {_COLUMNS},
    ({_PAGE_COUNTS.format(tenant="$1", user="$2")})
    AS counts
FROM notifications
WHERE tenant_id = $1 AND user_id = $2 AND {{conditions}}
ORDER BY created_at_ms DESC, id DESC
LIMIT $3
"""

_BY_IDS = f"""
SELECT {", ".join(f"n.{c.name}" for c in columns.COLUMNS)} FROM notifications n
JOIN unnest($2::uuid[]) WITH ORDINALITY AS k(row_id, position) ON n.id = k.row_id
WHERE n.tenant_id = $1
ORDER BY k.position
"""

_AFTER = f"""
SELECT {_COLUMNS} FROM notifications
WHERE tenant_id = $1 AND user_id = $2 AND (created_at_ms, id) > ($3, $4) AND channel = $5
  AND visible AND (expires_at_ms = 0 OR expires_at_ms > $7)
ORDER BY created_at_ms, id
LIMIT $6
"""

_MARK_READ = f"""
WITH updated AS (
    UPDATE notifications SET status = 4,
        read_at_ms = CASE WHEN status <> 4 THEN $4 ELSE read_at_ms END,
        seen_at_ms = CASE WHEN seen_at_ms = 0 THEN $4 ELSE seen_at_ms END
    WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND (status <> 4 OR seen_at_ms = 0)
    RETURNING {_COLUMNS}
),
logged AS ({pginbox.LOG} SELECT tenant_id, user_id, id, false, $4 FROM updated)
SELECT * FROM updated
UNION ALL
SELECT {_COLUMNS} FROM notifications
WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND NOT EXISTS (SELECT 1 FROM updated)
"""

# The same token again only refreshes its time (and moves it to this user if
# another had it); beyond MAX_DEVICES_PER_TYPE of a type the least recently
# registered go, in the same statement (the memory driver's order: newest
# first, then token by code point).
_UPSERT_DEVICE = """
WITH upserted AS (
    INSERT INTO devices (tenant_id, user_id, device_type, token, updated_at_ms, token_key)
    VALUES ($1, $2, $3, $4, $5, $7)
    ON CONFLICT (tenant_id, device_type, token_key)
    DO UPDATE SET user_id = EXCLUDED.user_id, updated_at_ms = EXCLUDED.updated_at_ms
    RETURNING token_key, updated_at_ms, token
), kept AS (
    SELECT token_key FROM (
        SELECT token_key, updated_at_ms, token FROM devices
        WHERE tenant_id = $1 AND user_id = $2 AND device_type = $3
              AND token_key <> (SELECT token_key FROM upserted)
        UNION ALL SELECT token_key, updated_at_ms, token FROM upserted
    ) AS mine
    ORDER BY updated_at_ms DESC, token COLLATE "C" DESC
    LIMIT $6
)
DELETE FROM devices
WHERE tenant_id = $1 AND user_id = $2 AND device_type = $3
      AND token_key NOT IN (SELECT token_key FROM kept)
"""


def _token_key(token: str) -> bytes:
    """A device's key: its token's SHA-256 (tokens outgrow what a btree key may hold)."""
    return hashlib.sha256(token.encode()).digest()


_DELETE_DEVICE = """
DELETE FROM devices
WHERE tenant_id = $1 AND user_id = $2 AND device_type = $3
      AND token_key = $4
"""

_DEVICES = """
SELECT tenant_id, user_id, device_type, token, updated_at_ms FROM devices
WHERE tenant_id = $1 AND user_id = $2 ORDER BY device_type, token COLLATE "C"
"""

# What asyncpg raises when the database is away or the connection broke.
_CONNECTION_ERRORS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)

UNAVAILABLE_MESSAGE = "the notification store is unavailable; retry shortly"

# Rows per group-commit batch, at most (one call's rows are never split
# across batches).
MAX_BATCH_ROWS = 5000
# Text per INSERT statement, at most: a larger call is written in several
# statements of one transaction, so memory per statement stays bounded and
# each statement finishes well within the command timeout.
MAX_STATEMENT_BYTES = 4 * 1024 * 1024

# One create_notifications call waiting for its batch: its rows, its answer and
# its announcer.
_Call = tuple[list[Notification], "asyncio.Future[list[StoredRow]]", Announcer | None]
# A call's rows (a slice of what is written) and its announcer.
_Announcing = tuple[Sequence[Notification], Announcer]


def _unavailable(exc: BaseException) -> Unavailable:
    logger.warning("store unavailable: %s", type(exc).__name__)
    return Unavailable(UNAVAILABLE_MESSAGE)


class PostgresStore:
    driver = "postgres"

    def __init__(self, pool: asyncpg.Pool, *, command_timeout: float) -> None:
        self._pool = pool
        self._timeout = command_timeout
        self._queue: deque[_Call] = deque()
        # Batches written at once: a few, so one commit's WAL flush overlaps
        # the next batch, while most of the pool stays free for reads.
        self._max_writers = max(1, pool.get_max_size() // 4)
        self._writers = 0
        self._writer_tasks: set[asyncio.Task[None]] = set()
        self._read_rows = columns.RowMemo()
        # Pages share a statement once this many reads are running (pgpages).
        self._pages = pgpages.PageReads(
            self._conn,
            pgpages.PageSQL(_PAGE, _COLUMNS, _PAGE_COUNTS, pginbox.INBOX_COUNTS),
            max_readers=min(pgpages.PAGE_READERS, pool.get_max_size() - self._max_writers),
        )

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 2,
        max_size: int = 16,
        command_timeout: float = 5.0,
        automigrate: bool = True,
    ) -> PostgresStore:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            # Statements are prepared per connection and reused: the hot paths
            # cost one round trip each.
            statement_cache_size=256,
            # The store never changes session state (no SET, LISTEN or held
            # locks), so asyncpg's reset on release (a round trip and four
            # statements per call) buys nothing.
            reset=_keep_session,
        )
        assert pool is not None
        try:
            if automigrate:
                async with pool.acquire() as conn:
                    await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, command_timeout=command_timeout)

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    def gauges(self) -> Gauges:
        """The pool: connections in use now, and open ones (in use or idle)."""
        return {
            "in_use": lambda: float(self._pool.get_size() - self._pool.get_idle_size()),
            "size": lambda: float(self._pool.get_size()),
        }

    @asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self._pool.acquire(timeout=self._timeout)
        except _CONNECTION_ERRORS as exc:
            raise _unavailable(exc) from None
        try:
            yield conn
        except (*_CONNECTION_ERRORS, asyncpg.InternalClientError) as exc:
            # The connection broke mid-statement: drop it so the pool opens a
            # fresh one, instead of handing a half-finished protocol state on.
            with contextlib.suppress(asyncpg.InterfaceError):
                conn.terminate()
            raise _unavailable(exc) from None
        except (asyncpg.UntranslatableCharacterError, asyncpg.CharacterNotInRepertoireError):
            raise InvalidArgument("text must be valid UTF-8 without NUL characters") from None
        finally:
            try:
                await self._pool.release(conn)
            except (*_CONNECTION_ERRORS, asyncpg.InternalClientError) as exc:
                # Resetting a connection the server just dropped fails; the pool
                # has discarded it, and the statement's answer stands.
                logger.debug("released a broken connection: %s", type(exc).__name__)

    async def create_notifications(
        self, rows: Sequence[Notification], announce: Announcer | None = None
    ) -> list[StoredRow]:
        """Group commit: calls that arrive while a batch is being written share the next one.

        Each call's rows still go in one statement (all or nothing); several
        concurrent calls simply share that statement, its round trip and its
        WAL flush. If the database is unavailable every call of the batch
        fails, and each may retry (creates are idempotent); data the database
        refuses fails only the call that carried it.

        Every call's ``announce`` is asked, inside the batch's transaction,
        for the payloads of the rows that call created; they are all sent in
        that transaction, so they commit with the rows or not at all.
        """
        if not rows:
            return []
        if any(_collapses(row) for row in rows):
            # A collapse reads and deletes the user's earlier row in the same
            # transaction: such a call is written on its own, not grouped.
            return await self._insert(rows, _announcing(rows, announce))
        waiter: asyncio.Future[list[StoredRow]] = asyncio.get_running_loop().create_future()
        self._queue.append((list(rows), waiter, announce))
        if self._writers < self._max_writers:
            self._writers += 1
            task = asyncio.get_running_loop().create_task(self._write_batches())
            self._writer_tasks.add(task)
            task.add_done_callback(self._writer_tasks.discard)
        return await waiter

    async def _write_batches(self) -> None:
        try:
            while self._queue:
                batch = [self._queue.popleft()]
                size = len(batch[0][0])
                while self._queue and size + len(self._queue[0][0]) <= MAX_BATCH_ROWS:
                    batch.append(self._queue.popleft())
                    size += len(batch[-1][0])
                announcing = [
                    (rows, announce) for rows, _, announce in batch if announce is not None
                ]
                try:
                    stored = await self._insert(
                        [row for rows, _, _ in batch for row in rows], announcing
                    )
                except InvalidArgument:
                    # Some call's data was refused: write each alone, so only it fails.
                    await self._write_each(batch)
                    continue
                except NotifyError as exc:
                    _fail(batch, type(exc), exc.message)
                    continue
                except Exception as exc:
                    for _, waiter, _ in batch:
                        if not waiter.done():
                            waiter.set_exception(exc)
                    continue
                start = 0
                for rows, waiter, _ in batch:
                    if not waiter.done():  # its caller may have been cancelled meanwhile
                        waiter.set_result(stored[start : start + len(rows)])
                    start += len(rows)
        finally:
            self._writers -= 1

    async def _write_each(self, batch: Sequence[_Call]) -> None:
        for rows, waiter, announce in batch:
            try:
                stored = await self._insert(rows, _announcing(rows, announce))
            except NotifyError as exc:
                _fail([(rows, waiter, announce)], type(exc), exc.message)
            except Exception as exc:
                if not waiter.done():
                    waiter.set_exception(exc)
            else:
                if not waiter.done():
                    waiter.set_result(stored)

    async def _insert(
        self, rows: Sequence[Notification], announcing: Sequence[_Announcing] = ()
    ) -> list[StoredRow]:
        chunks = _chunks(rows)
        collapsing = any(_collapses(row) for row in rows)
        replaced: dict[str, tuple[str, int]] = {}
        async with self._conn() as conn:
            inserted: set[str] | None = None
            if len(chunks) == 1 and not collapsing:
                inserted = await self._insert_one(conn, rows, announcing)
            if inserted is None:
                inserted = set()
                async with conn.transaction():  # all or nothing, whatever the size
                    for chunk in chunks:
                        inserted.update(await self._insert_chunk(conn, chunk))
                    for row in rows:
                        if _collapses(row) and row.id in inserted:
                            await self._collapse(conn, row, replaced)
                    await _announce(conn, announcing, inserted)
            if len(inserted) == len(rows):
                return [StoredRow(row, True, *replaced.get(row.id, ("", 0))) for row in rows]
            # A retry, or two calls for the same key in this batch: read back
            # what is stored, in statements of their own so they see rows
            # another caller committed since this one began.
            by_key: dict[tuple[str, str, str, int], Notification] = {}
            for chunk in _chunks([row for row in rows if row.id not in inserted]):
                for record in await conn.fetch(
                    _EXISTING,
                    [r.tenant_id for r in chunk],
                    [r.user_id for r in chunk],
                    [r.notification_id for r in chunk],
                    [int(r.channel) for r in chunk],
                ):
                    row = columns.to_row(record)
                    by_key[(row.tenant_id, row.user_id, row.notification_id, int(row.channel))] = (
                        row
                    )
        result: list[StoredRow] = []
        for row in rows:
            if row.id in inserted:
                result.append(StoredRow(row, True, *replaced.get(row.id, ("", 0))))
            else:
                key = (row.tenant_id, row.user_id, row.notification_id, int(row.channel))
                result.append(StoredRow(by_key[key].copy(), created=False))
        return result

    @classmethod
    async def _insert_one(
        cls,
        conn: asyncpg.Connection,
        rows: Sequence[Notification],
        announcing: Sequence[_Announcing],
    ) -> set[str] | None:
        """One statement, announcement included; None: write it in a transaction instead.

        The announcers are asked first, as if every row were new (the usual
        case); the statement sends their payloads only if that holds.
        """
        channels, sent = _announcement(announcing)
        if channels is None:
            return await cls._insert_chunk(conn, rows)
        if len(channels) != 1:
            return None  # payloads for several channels: the general path
        (channel,) = channels
        try:
            records = await conn.fetch(
                _INSERT_ANNOUNCED, *columns.to_arrays(rows), channel, sent, len(rows)
            )
        except asyncpg.DivisionByZeroError:
            return None  # some rows were there already: nothing was stored
        return {str(r[0]) for r in records}

    @staticmethod
    async def _collapse(
        conn: asyncpg.Connection, row: Notification, replaced: dict[str, tuple[str, int]]
    ) -> None:
        """Deletes the row the new one replaces; records its id and the new count."""
        await conn.execute(
            pginbox.COLLAPSE_LOCK, f"{row.tenant_id}\x1f{row.user_id}\x1f{row.collapse_key}"
        )
        record = await conn.fetchrow(
            pginbox.COLLAPSE,
            row.tenant_id,
            row.user_id,
            row.collapse_key,
            uuid.UUID(row.id),
            row.created_at_ms,
        )
        if record is not None:
            replaced[row.id] = (str(record["replaced"]), int(record["change_seq"]))
            row.collapsed_count = int(record["collapsed_count"])

    @staticmethod
    async def _insert_chunk(conn: asyncpg.Connection, rows: Sequence[Notification]) -> set[str]:
        return {str(r[0]) for r in await conn.fetch(_INSERT, *columns.to_arrays(rows))}

    async def mark_delivered(self, rows: Sequence[Notification], at_ms: int) -> None:
        if not rows:
            return
        async with self._conn() as conn:
            await conn.execute(_MARK_DELIVERED, [uuid.UUID(r.id) for r in rows], at_ms)

    async def list_notifications(self, tenant_id: str, user_id: str, page: PageRequest) -> Page:
        params = Params(tenant_id, user_id, page.limit + 1)
        filter = page.filter
        if page.unread_only and filter.read is ReadScope.ANY:
            filter = replace(filter, read=ReadScope.UNREAD)
        now = params.add(page.now_ms)
        conditions = pginbox.filter_sql(filter, params, now)
        # Pages whose filter adds no array (the inbox and its tabs) may share
        # a statement with others of the same conditions (pgpages).
        shareable = len(params.values) == 4
        if page.after is not None:
            after_ms = params.add(page.after.created_at_ms)
            after_id = params.add(_uuid_or_none(page.after.id))
            conditions.append(f"(created_at_ms, id) < ({after_ms}, {after_id})")
        records, counts_found = await self._pages.read(
            " AND ".join(conditions), params.values, shareable=shareable
        )
        counts = _counts(counts_found)
        rows = self._read_rows.many(records[: page.limit])
        next_key = rows[-1].key if len(records) > page.limit else None
        return Page(rows=rows, next_key=next_key, counts=counts)

    async def mark(
        self, tenant_id: str, user_id: str, selection: Selection, change: Change, now_ms: int
    ) -> Changed:
        params = Params(tenant_id, user_id)
        now = params.add(now_ms)
        assignments, conditions = pginbox.change_sql(change, params, now)
        conditions += pginbox.selection_sql(_valid_ids(selection), params, now)
        query = (
            f"WITH changed AS (UPDATE notifications SET {assignments} "
            f"WHERE tenant_id = $1 AND user_id = $2 AND {' AND '.join(conditions)} "
            f"RETURNING {_COLUMNS}), "
            f"logged AS ({pginbox.LOG} SELECT tenant_id, user_id, id, false, {now} "
            "FROM changed RETURNING seq) "
            "SELECT changed.*, (SELECT max(seq) FROM logged) AS change_seq FROM changed"
        )
        async with self._conn() as conn:
            records = await conn.fetch(query, *params.values)
            counts = _counts(await conn.fetchrow(pginbox.INBOX_COUNTS, tenant_id, user_id))
        logged = int(records[0]["change_seq"]) if records else 0
        return Changed([columns.to_row(r) for r in records], counts, logged)

    async def delete(
        self, tenant_id: str, user_id: str, selection: Selection, now_ms: int
    ) -> Deleted:
        params = Params(tenant_id, user_id)
        # By ids the clock plays no part (and an unused parameter has no type).
        now = params.add(now_ms) if selection.filter is not None else ""
        conditions = pginbox.selection_sql(_valid_ids(selection), params, now)
        at = params.add(now_ms)
        query = (
            "WITH gone AS (DELETE FROM notifications WHERE tenant_id = $1 AND user_id = $2 AND "
            f"{' AND '.join(conditions)} RETURNING id, created_at_ms), "
            f"logged AS ({pginbox.LOG} SELECT $1, $2, id, true, {at}::bigint FROM gone "
            "RETURNING seq) "
            "SELECT id, created_at_ms, (SELECT max(seq) FROM logged) AS change_seq FROM gone"
        )
        async with self._conn() as conn:
            records = await conn.fetch(query, *params.values)
            counts = _counts(await conn.fetchrow(pginbox.INBOX_COUNTS, tenant_id, user_id))
        ordered = sorted(records, key=lambda r: (r["created_at_ms"], r["id"]), reverse=True)
        change = int(records[0]["change_seq"]) if records else 0
        return Deleted([str(r["id"]) for r in ordered], counts, change)

    async def counts(self, tenant_id: str, user_id: str, filter: Filter, now_ms: int) -> Counts:
        async with self._conn() as conn:
            if filter.is_inbox:
                return _counts(await conn.fetchrow(pginbox.INBOX_COUNTS, tenant_id, user_id))
            params = Params(tenant_id, user_id)
            conditions = pginbox.filter_sql(filter, params, params.add(now_ms))
            record = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE status < 4), count(*) FILTER "
                "(WHERE seen_at_ms = 0), count(*) FROM notifications "
                f"WHERE tenant_id = $1 AND user_id = $2 AND {' AND '.join(conditions)}",
                *params.values,
            )
        return _counts(record)

    async def inbox_counts(self, tenant_id: str, user_ids: Sequence[str]) -> dict[str, Counts]:
        async with self._conn() as conn:
            records = await conn.fetch(pginbox.MANY_INBOX_COUNTS, tenant_id, list(user_ids))
        found = {r["user_id"]: Counts(r["unread"], r["unseen"], r["total"]) for r in records}
        return {user_id: found.get(user_id, Counts()) for user_id in user_ids}

    async def run_due(self, now_ms: int, limit: int) -> Due:
        async with self._conn() as conn:
            woken = await conn.fetch(pginbox.WAKE_DUE, now_ms, limit)
            expired = await conn.fetch(pginbox.EXPIRE_DUE, now_ms, limit)
            await conn.execute(pginbox.TRIM_CHANGES, now_ms - pginbox.CHANGE_LOG_AGE_MS)
        return Due(
            [columns.to_row(r) for r in woken if not r["was_snoozed"]],
            [columns.to_row(r) for r in expired],
            [columns.to_row(r) for r in woken if r["was_snoozed"]],
            _last_changes([*woken, *expired]),
        )

    async def purge_read(self, read_before_ms: int, now_ms: int, limit: int) -> Purged:
        async with self._conn() as conn:
            records = await conn.fetch(pginbox.PURGE_READ, read_before_ms, limit, now_ms)
        return Purged([columns.to_row(r) for r in records], _last_changes(records))

    async def changes_after(
        self, tenant_id: str, user_id: str, after: int, limit: int
    ) -> list[LoggedChange]:
        async with self._conn() as conn:
            records = await conn.fetch(pginbox.CHANGES_AFTER, tenant_id, user_id, after, limit)
        return [LoggedChange(r["seq"], str(r["row_id"]), r["deleted"]) for r in records]

    async def last_change(self, tenant_id: str, user_id: str) -> int:
        async with self._conn() as conn:
            value = await conn.fetchval(pginbox.LAST_CHANGE, tenant_id, user_id)
        return int(value) if value is not None else 0

    async def next_due_ms(self) -> int | None:
        async with self._conn() as conn:
            value = await conn.fetchval(pginbox.NEXT_DUE)
        return int(value) if value is not None else None

    async def get_notifications(self, tenant_id: str, row_ids: Sequence[str]) -> list[Notification]:
        ids = [u for u in map(_uuid_or_none, row_ids) if u is not None]
        if not ids:
            return []
        async with self._conn() as conn:
            records = await conn.fetch(_BY_IDS, tenant_id, ids)
        return self._read_rows.many(records)

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
        async with self._conn() as conn:
            records = await conn.fetch(
                _AFTER,
                tenant_id,
                user_id,
                after.created_at_ms,
                _uuid_or_none(after.id),
                int(channel),
                limit,
                now_ms if now_ms else 2**62,
            )
        return [columns.to_row(r) for r in records]

    async def mark_read(
        self, tenant_id: str, user_id: str, row_id: str, at_ms: int
    ) -> Notification | None:
        row_uuid = _uuid_or_none(row_id)
        if row_uuid is None:
            return None
        async with self._conn() as conn:
            record = await conn.fetchrow(_MARK_READ, tenant_id, user_id, row_uuid, at_ms)
        return columns.to_row(record) if record is not None else None

    async def upsert_device(self, device: Device) -> None:
        async with self._conn() as conn:
            await conn.execute(
                _UPSERT_DEVICE,
                device.tenant_id,
                device.user_id,
                int(device.device_type),
                device.token,
                device.updated_at_ms,
                MAX_DEVICES_PER_TYPE,
                _token_key(device.token),
            )

    async def delete_device(
        self, tenant_id: str, user_id: str, device_type: DeviceType, token: str
    ) -> bool:
        async with self._conn() as conn:
            status = await conn.execute(
                _DELETE_DEVICE, tenant_id, user_id, int(device_type), _token_key(token)
            )
        return bool(status != "DELETE 0")

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
        async with self._conn() as conn:
            records = await conn.fetch(_DEVICES, tenant_id, user_id)
        return [
            Device(r["tenant_id"], r["user_id"], DeviceType(r["device_type"]), r["token"],
                   r["updated_at_ms"])
            for r in records
        ]  # fmt: skip

    async def ping(self) -> None:
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        await self._pool.close()

    # ------------------------------------------------------------ delivery

    async def claim_outbox(
        self, channel: Channel, now_ms: int, limit: int, lease_ms: int, token: str
    ) -> list[OutboxEntry]:
        async with self._conn() as conn:
            records = await conn.fetch(
                pgoutbox.CLAIM, int(channel), now_ms, limit, lease_ms, uuid.UUID(token)
            )
        return [OutboxEntry(columns.to_row(r), int(r["first_due_ms"])) for r in records]

    async def finish_outbox(self, token: str, results: Sequence[SendResult]) -> list[str]:
        if not results:
            return []
        async with self._conn() as conn:
            records = await conn.fetch(
                pgoutbox.FINISH,
                uuid.UUID(token),
                [uuid.UUID(r.row_id) for r in results],
                [int(r.status) for r in results],
                [r.attempts for r in results],
                [r.at_ms for r in results],
                [r.provider_message_id for r in results],
                [r.reason for r in results],
                [r.retry_at_ms for r in results],
            )
        return [str(r["id"]) for r in records]

    async def release_outbox(self, token: str, row_ids: Sequence[str]) -> None:
        if not row_ids:
            return
        async with self._conn() as conn:
            await conn.execute(pgoutbox.RELEASE, uuid.UUID(token), [uuid.UUID(i) for i in row_ids])

    async def outbox_depth(self, now_ms: int) -> dict[Channel, OutboxDepth]:
        async with self._conn() as conn:
            records = await conn.fetch(pgoutbox.DEPTH, now_ms)
        return {
            Channel(r["channel"]): OutboxDepth(int(r["entries"]), int(r["oldest_due_ms"]))
            for r in records
        }

    async def preferences_for(
        self, tenant_id: str, user_ids: Sequence[str]
    ) -> dict[str, Preferences]:
        async with self._conn() as conn:
            return await self._preferences(conn, tenant_id, user_ids)

    @staticmethod
    async def _preferences(
        conn: asyncpg.Connection, tenant_id: str, user_ids: Sequence[str]
    ) -> dict[str, Preferences]:
        defaults, required, user_rules = await conn.fetchrow(
            pgoutbox.PREFERENCES, tenant_id, list(user_ids)
        )
        tenant = TenantPreferences()
        if defaults is not None:
            tenant = TenantPreferences(
                tuple(
                    PreferenceRule(c, Channel(ch), bool(on)) for c, ch, on in orjson.loads(defaults)
                ),
                tuple(orjson.loads(required)),
            )
        rules: dict[str, list[PreferenceRule]] = {user_id: [] for user_id in user_ids}
        for user_id, category, channel, enabled in orjson.loads(user_rules or "[]"):
            rules[user_id].append(PreferenceRule(category, Channel(channel), enabled))
        return {user_id: Preferences(tuple(found), tenant) for user_id, found in rules.items()}

    async def update_preferences(
        self,
        tenant_id: str,
        user_id: str,
        rules: Sequence[PreferenceRule],
        *,
        replace: bool,
    ) -> Preferences:
        merged = merge_rules((), rules, replace=True)  # the last rule for a key wins
        async with self._conn() as conn, conn.transaction():
            if replace:
                await conn.execute(pgoutbox.DELETE_USER_RULES, tenant_id, user_id)
            if merged:
                await conn.execute(
                    pgoutbox.UPSERT_USER_RULES,
                    tenant_id,
                    user_id,
                    [r.category for r in merged],
                    [int(r.channel) for r in merged],
                    [r.enabled for r in merged],
                )
            found = await self._preferences(conn, tenant_id, [user_id])
        return found[user_id]

    async def set_tenant_preferences(self, tenant_id: str, tenant: TenantPreferences) -> None:
        defaults = [[r.category, int(r.channel), r.enabled] for r in tenant.defaults]
        async with self._conn() as conn:
            await conn.execute(
                pgoutbox.SET_TENANT,
                tenant_id,
                orjson.dumps(defaults).decode(),
                orjson.dumps(list(tenant.required_categories)).decode(),
            )


def _announcing(rows: Sequence[Notification], announce: Announcer | None) -> list[_Announcing]:
    return [] if announce is None else [(rows, announce)]


def _announcement(announcing: Sequence[_Announcing]) -> tuple[set[str] | None, list[str]]:
    """The channels and payloads of every call's announcement, as if all its rows were
    new; (None, []) when nobody has anything to say."""
    channels: set[str] = set()
    sent: list[str] = []
    for call_rows, announce in announcing:
        found = announce(call_rows)
        if found is not None and found.payloads:
            channels.add(found.channel)
            sent.extend(found.payloads)
    return (channels or None), sent


async def _announce(
    conn: asyncpg.Connection, announcing: Sequence[_Announcing], inserted: set[str]
) -> None:
    """Sends, in the open transaction, every call's announcement of the rows it created."""
    by_channel: dict[str, list[str]] = {}
    for call_rows, announce in announcing:
        created = [r for r in call_rows if r.id in inserted]
        if created and (found := announce(created)) is not None:
            by_channel.setdefault(found.channel, []).extend(found.payloads)
    for channel, sent in by_channel.items():
        if sent:
            await conn.execute(_ANNOUNCE, channel, sent)


def _text_bytes(row: Notification) -> int:
    # Characters, not encoded bytes: cheap, and within 4x of the UTF-8 size.
    return len(row.title) + len(row.body) + len(row.subject_ref) + len(row.subject_type) + 64


def _chunks(rows: Sequence[Notification]) -> list[Sequence[Notification]]:
    """Consecutive slices of at most MAX_BATCH_ROWS rows and MAX_STATEMENT_BYTES of text."""
    chunks: list[Sequence[Notification]] = []
    start, size = 0, 0
    for index, row in enumerate(rows):
        cost = _text_bytes(row)
        if index > start and (size + cost > MAX_STATEMENT_BYTES or index - start >= MAX_BATCH_ROWS):
            chunks.append(rows[start:index])
            start, size = index, 0
        size += cost
    chunks.append(rows[start:])
    return chunks


def _last_changes(records: Sequence[asyncpg.Record]) -> dict[tuple[str, str], int]:
    """(tenant, user) -> the latest change-log position among the records of that user."""
    changes: dict[tuple[str, str], int] = {}
    for record in records:
        key = (record["tenant_id"], record["user_id"])
        changes[key] = max(changes.get(key, 0), int(record["change_seq"]))
    return changes


def _collapses(row: Notification) -> bool:
    return bool(row.collapse_key) and row.channel is Channel.IN_APP


def _row_key(row: Notification) -> tuple[str, str, str, int]:
    return (row.tenant_id, row.user_id, row.notification_id, int(row.channel))


def _valid_ids(selection: Selection) -> Selection:
    """Ids that are not UUIDs name no row; PostgreSQL would refuse the cast."""
    if selection.filter is not None:
        return selection
    return Selection(ids=tuple(i for i in selection.ids if _uuid_or_none(i) is not None))


def _counts(record: Any) -> Counts:
    if record is None:
        return Counts()
    unread, unseen, total = record
    return Counts(int(unread), int(unseen), int(total))


def _fail(batch: Sequence[_Call], error: type[NotifyError], message: str) -> None:
    for _, waiter, _ in batch:
        if not waiter.done():
            waiter.set_exception(error(message))


async def _keep_session(conn: asyncpg.Connection) -> None:
    return None


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
