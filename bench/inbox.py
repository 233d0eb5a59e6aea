"""The rich inbox: GetNotifications of 1,000 rich rows against plain ones, and mark-all.

``inbox_rich``/``pg_inbox_rich`` seed two users of one notifyd with 1,000
rows each, one plain (title and body, as ``get_notifications`` seeds) and one
rich (severity, category, 3 actions, 1 KiB of ``data``, tags), then wrk pages
through each inbox with limit 100 (the 10 pages' bodies in turn, cursors taken
beforehand), plain and rich alternately in the same run, so the ratio compares
like with like. The issue's bar: rich rows cost at most 15% of req/s.

``inbox_rich_proto``/``pg_inbox_rich_proto`` are the same with Connect
binary (``application/proto``) bodies and answers: the path gRPC takes too.

``mark_all``/``pg_mark_all`` time MarkNotifications {all: true, MARK_READ}
over 1,000 unread rows, each call on a freshly seeded user.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from elloloop.notify.v1 import notify_pb2 as pb
from google.protobuf import json_format

from bench import h1, wrk
from bench.measurements import (
    TENANT,
    Figure,
    OtherCpuMeter,
    Report,
    Settings,
    cpu_line,
    no_other_cpu,
    with_server,
)
from bench.pgcluster import database
from bench.server import Notifyd

PLAIN_READER = "inbox-plain"
RICH_READER = "inbox-rich"
MARKER = "inbox-mark-"
PAGE = 100
MAX_RICH_COST = 0.15  # rich rows may cost at most this share of plain rows' req/s
SEED_WORKERS = 8
PROTO = "application/proto"

_FILLER = (
    "api v2.3 could not start on 2 of 3 hosts: the health check timed out after 30 s. "
    "The previous release is still serving; no traffic was lost. "
)


def plain_row(number: int) -> dict[str, Any]:
    return {
        "title": f"Seeded notification {number}",
        "body": "A body of a realistic length for an in-app notification.",
    }


def rich_data(number: int) -> dict[str, Any]:
    """About 1 KiB of JSON: what a UI keeps to render the row without a lookup."""
    data: dict[str, Any] = {
        "run": number,
        "repository": "acme/api",
        "commit": f"{number:040x}",
        "hosts": [{"name": f"api-{i}", "zone": f"eu-west-{i}", "ok": i == 0} for i in range(3)],
        "durationMs": 30_000 + number,
    }
    used = len(json.dumps(data, separators=(",", ":")))
    data["summary"] = (_FILLER * 8)[: max(0, 1024 - used - len(',"summary":""'))]
    return data


def rich_row(number: int) -> dict[str, Any]:
    return {
        **plain_row(number),
        "severity": "SEVERITY_ERROR",
        "category": "deploy.failed",
        "actions": [
            {"id": "logs", "label": "View logs", "url": f"/runs/{number}/logs", "primary": True},
            {"id": "retry", "label": "Retry", "url": f"https://ci.example.com/runs/{number}"},
            {"id": "mute", "label": "Mute this service", "url": "/settings/mute?service=api"},
        ],
        "data": rich_data(number),
        "tags": ["prod", "api", "eu-west"],
    }


async def seed(server: Notifyd, user: str, rows: int, *, rich: bool) -> float:
    """``rows`` unread in-app rows for ``user`` through Notify; returns the seconds it took."""
    started = time.perf_counter()
    numbers = iter(range(rows))

    async def worker() -> None:
        connection = await h1.Connection("127.0.0.1", server.ports.internal).connect()
        try:
            for number in numbers:
                payload = {
                    "tenantId": TENANT,
                    "notificationId": f"{user}-{number}",
                    "userIds": [user],
                    "channels": ["DELIVERY_CHANNEL_IN_APP"],
                    **(rich_row(number) if rich else plain_row(number)),
                }
                response = await connection.post_json(wrk.NOTIFY_PATH, payload, {})
                if response.status != 200:
                    raise RuntimeError(
                        f"seeding Notify answered {response.status}: {response.body[:300]!r}"
                    )
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(SEED_WORKERS)))
    return time.perf_counter() - started


def auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev:{user}:{TENANT}"}


async def call(server: Notifyd, path: str, user: str, payload: dict[str, Any]) -> dict[str, Any]:
    connection = await h1.Connection("127.0.0.1", server.ports.client).connect()
    try:
        response = await connection.post_json(path, payload, auth(user))
    finally:
        await connection.close()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {response.body[:300]!r}")
    answer: dict[str, Any] = response.json()
    return answer


async def walk_pages(server: Notifyd, user: str) -> tuple[list[str], list[dict[str, Any]], int]:
    """Every page of ``user``'s inbox with limit 100: the request bodies, the rows, the bytes."""
    bodies: list[str] = []
    rows: list[dict[str, Any]] = []
    size = 0
    cursor = ""
    connection = await h1.Connection("127.0.0.1", server.ports.client).connect()
    try:
        while True:
            body = json.dumps({"limit": PAGE, **({"cursor": cursor} if cursor else {})})
            headers = {"Content-Type": "application/json", **auth(user)}
            response = await connection.post(wrk.GET_NOTIFICATIONS_PATH, body.encode(), headers)
            if response.status != 200:
                raise RuntimeError(f"GetNotifications answered {response.status}")
            bodies.append(body)
            size += len(response.body)
            page = response.json()
            rows += page.get("notifications", [])
            cursor = page.get("nextCursor", "")
            if not cursor or len(bodies) > 1000:
                break
    finally:
        await connection.close()
    return bodies, rows, size


def proto_bodies(bodies: list[str]) -> list[bytes]:
    """The same page requests as binary GetNotificationsRequests."""
    return [
        json_format.Parse(body, pb.GetNotificationsRequest()).SerializeToString() for body in bodies
    ]


async def proto_page(server: Notifyd, user: str, body: bytes) -> pb.GetNotificationsResponse:
    connection = await h1.Connection("127.0.0.1", server.ports.client).connect()
    try:
        headers = {"Content-Type": PROTO, **auth(user)}
        response = await connection.post(wrk.GET_NOTIFICATIONS_PATH, body, headers)
    finally:
        await connection.close()
    if response.status != 200:
        raise RuntimeError(f"binary GetNotifications answered {response.status}")
    return pb.GetNotificationsResponse.FromString(response.body)


def _load(
    server: Notifyd,
    settings: Settings,
    bodies: list[str] | list[bytes],
    user: str,
    meter: OtherCpuMeter,
    content_type: str,
) -> tuple[wrk.WrkResult, list[tuple[str, float]]]:
    script = wrk.rotating_post_script(
        wrk.GET_NOTIFICATIONS_PATH, bodies, auth(user), content_type=content_type
    )
    common = {"connections": settings.connections, "threads": settings.wrk_threads}
    wrk.run_wrk(server, server.client_url, script, duration_s=settings.warmup_s, **common)
    with meter() as others:
        result = wrk.run_wrk(
            server, server.client_url, script, duration_s=settings.duration_s, **common
        )
    return result, others


def _inbox_rich(
    settings: Settings,
    report: Report,
    store: str,
    meter: OtherCpuMeter = no_other_cpu,
    env: dict[str, str] | None = None,
    binary: bool = False,
) -> Report:
    rows = settings.seed_rows
    rounds = 1 if settings.quick else 3
    codec = "Connect binary" if binary else "Connect JSON"

    def body(server: Notifyd) -> None:
        seeded = {
            user: asyncio.run(seed(server, user, rows, rich=user == RICH_READER))
            for user in (PLAIN_READER, RICH_READER)
        }
        pages = {user: asyncio.run(walk_pages(server, user)) for user in seeded}
        for user, (bodies, listed, size) in pages.items():
            kind = "rich" if user == RICH_READER else "plain"
            ids = {row["notificationId"] for row in listed}
            report.check(
                f"{kind}: seeded {rows:,} rows in {seeded[user]:.2f} s; paged them all with "
                f"limit {PAGE}: {len(bodies)} pages, {len(listed):,} rows, {len(ids):,} distinct",
                len(bodies) == -(-rows // PAGE) and len(listed) == rows == len(ids),
            )
            report.details.append(
                f"{kind} rows: {size / len(bodies) / 1024:.1f} KiB per page of {PAGE} "
                f"(Connect JSON), {size / max(1, len(listed)):.0f} bytes per row"
            )
        sample = pages[RICH_READER][1][0]
        data_bytes = len(json.dumps(sample.get("data", {}), separators=(",", ":")))
        report.check(
            f"a rich row comes back rich: {sample.get('severity')}, "
            f"{len(sample.get('actions', []))} actions, {len(sample.get('tags', []))} tags, "
            f"{data_bytes} bytes of data",
            sample.get("severity") == "SEVERITY_ERROR"
            and len(sample.get("actions", [])) == 3
            and len(sample.get("tags", [])) == 3
            and 900 <= data_bytes <= 1100,
        )
        loads: dict[str, list[str] | list[bytes]] = {user: pages[user][0] for user in pages}
        if binary:
            loads = {user: proto_bodies(pages[user][0]) for user in pages}
            first = asyncio.run(proto_page(server, RICH_READER, loads[RICH_READER][0]))
            row = first.notifications[0] if first.notifications else pb.Notification()
            as_json = json_format.MessageToDict(row)
            report.check(
                f"binary: the first rich page has {len(first.notifications)} rows, the same "
                f"first row as JSON, {len(row.actions)} actions and "
                f"{len(json.dumps(as_json.get('data', {}), separators=(',', ':')))} bytes of data",
                len(first.notifications) == PAGE
                and row.notification_id == sample["notificationId"]
                and len(row.actions) == 3
                and as_json.get("data") == sample.get("data"),
            )
        results: dict[str, list[wrk.WrkResult]] = {PLAIN_READER: [], RICH_READER: []}
        for _ in range(rounds):  # alternately, so drift on a shared machine hits both
            for user in (PLAIN_READER, RICH_READER):
                result, others = _load(
                    server,
                    settings,
                    loads[user],
                    user,
                    meter,
                    PROTO if binary else "application/json",
                )
                results[user].append(result)
                kind = "rich" if user == RICH_READER else "plain"
                report.details.append(
                    f"{kind}: {result.requests:,} requests in {result.duration_s:.1f} s, "
                    f"{result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 "
                    f"{result.p99_ms:.2f} ms; "
                    + cpu_line(report, result.server_cpu, "wrk", result.wrk_cpu_cores, others)
                )
                report.check(
                    f"{kind}: non-2xx {result.errors_status}, socket errors {result.errors_socket}",
                    result.errors_status == 0 and result.errors_socket == 0,
                )
        plain = statistics.median(r.rps for r in results[PLAIN_READER])
        rich = statistics.median(r.rps for r in results[RICH_READER])
        rich_p99 = statistics.median(r.p99_ms for r in results[RICH_READER])
        report.figures += [
            Figure(f"GetNotifications limit {PAGE}, rich rows, {store}, {codec}", rich, "req/s"),
            Figure(f"  same, plain rows, {store}", plain, "req/s"),
            Figure("  rich / plain req/s", rich / plain if plain else 0.0, "x",
                   1 - MAX_RICH_COST),
            Figure("  rich rows' latency p99", rich_p99, "ms"),
            Figure("  rows/s served, rich", rich * PAGE, "rows/s"),
        ]  # fmt: skip

    return with_server(settings, report, body, env=env)


def inbox_rich(settings: Settings) -> Report:
    report = Report(
        "inbox_rich",
        f"GetNotifications of {settings.seed_rows:,} rich vs plain rows (limit {PAGE}, memory)",
    )
    return _inbox_rich(settings, report, "memory")


def pg_inbox_rich(settings: Settings) -> Report:
    report = Report(
        "pg_inbox_rich",
        f"GetNotifications of {settings.seed_rows:,} rich vs plain rows (limit {PAGE}, PostgreSQL)",
    )
    with database() as db:
        report.details.append(db.describe())
        return _inbox_rich(settings, report, "PostgreSQL", db.cpu_meter, db.env)


def inbox_rich_proto(settings: Settings) -> Report:
    report = Report(
        "inbox_rich_proto",
        f"GetNotifications of {settings.seed_rows:,} rich vs plain rows "
        f"(limit {PAGE}, memory, Connect binary)",
    )
    return _inbox_rich(settings, report, "memory", binary=True)


def pg_inbox_rich_proto(settings: Settings) -> Report:
    report = Report(
        "pg_inbox_rich_proto",
        f"GetNotifications of {settings.seed_rows:,} rich vs plain rows "
        f"(limit {PAGE}, PostgreSQL, Connect binary)",
    )
    with database() as db:
        report.details.append(db.describe())
        return _inbox_rich(settings, report, "PostgreSQL", db.cpu_meter, db.env, binary=True)


# -- mark_all: MarkNotifications {all: true, MARK_READ} over 1,000 unread rows --


def _mark_all(
    settings: Settings,
    report: Report,
    store: str,
    meter: OtherCpuMeter = no_other_cpu,
    env: dict[str, str] | None = None,
) -> Report:
    rows = settings.seed_rows
    rounds = 3 if settings.quick else 10

    def body(server: Notifyd) -> None:
        times_ms: list[float] = []
        seeding_s: list[float] = []
        answers: list[tuple[int, int]] = []
        others_cores: list[float] = []
        for number in range(rounds + 1):  # the first round warms up (prepared statements)
            user = f"{MARKER}{number}"
            seeding_s.append(asyncio.run(seed(server, user, rows, rich=True)))
            request = {"all": True, "mark": "MARK_READ"}
            with meter() as others:
                started = time.perf_counter()
                answer = asyncio.run(call(server, wrk.MARK_NOTIFICATIONS_PATH, user, request))
                elapsed = time.perf_counter() - started
            after = asyncio.run(call(server, wrk.GET_NOTIFICATIONS_PATH, user, {"limit": 1}))
            if number == 0:
                continue
            times_ms.append(elapsed * 1000)
            others_cores += [cores for _, cores in others]
            answers.append((int(answer.get("updated", 0)), int(after["counts"].get("unread", 0))))
        median_ms = statistics.median(times_ms)
        ordered = sorted(times_ms)
        report.figures += [
            Figure(f"MarkNotifications all, {rows:,} unread rows, {store}", median_ms, "ms"),
            Figure("  per row", median_ms * 1000 / rows, "us"),
        ]
        report.details += [
            f"{rounds} calls, each on a user freshly seeded with {rows:,} unread rich rows "
            f"(seeding {statistics.median(seeding_s):.2f} s each, not timed): min "
            f"{ordered[0]:.1f} ms, median {median_ms:.1f} ms, max {ordered[-1]:.1f} ms",
        ]
        if others_cores:
            report.details.append(
                f"PostgreSQL during a call: median {statistics.median(others_cores):.2f} cores"
            )
        wrong = [a for a in answers if a != (rows, 0)]
        report.check(
            f"every call answered updated={rows:,} and left 0 unread "
            f"({len(answers) - len(wrong)} of {len(answers)})",
            not wrong,
        )

    return with_server(settings, report, body, env=env)


def mark_all(settings: Settings) -> Report:
    title = f"MarkNotifications all over {settings.seed_rows:,} unread rows (memory)"
    return _mark_all(settings, Report("mark_all", title), "memory")


def pg_mark_all(settings: Settings) -> Report:
    title = f"MarkNotifications all over {settings.seed_rows:,} unread rows (PostgreSQL)"
    report = Report("pg_mark_all", title)
    with database() as db:
        report.details.append(db.describe())
        return _mark_all(settings, report, "PostgreSQL", db.cpu_meter, db.env)
