"""The measurements: each starts a fresh notifyd, loads it, checks, and reports.

Each returns a Report: the headline figures (with their targets), detail
lines, and the sanity checks that make the figures trustworthy (no errors,
every Notify really stored a new row, every frame arrived, ...). The first
five live here with what they all share; bench.live and bench.postgres hold
the others, and bench.registry names them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from bench import grpc_load, h1, streams, wrk
from bench.profile import Profiler
from bench.server import CpuReading, Notifyd

TENANT = "bench"
NOTIFY_USERS = 1000
READER = "reader-1"
NOISY = 0.25  # cores used by other processes during a measurement


@dataclass(frozen=True, slots=True)
class Settings:
    quick: bool
    duration_s: int
    warmup_s: int
    connections: int
    wrk_threads: int
    grpc_processes: int
    grpc_channels: int
    stream_count: int
    stream_samples: int
    streams_per_channel: int
    seed_rows: int
    many_streams: int  # streams_5k
    fanout_users: int  # pg_fanout: users per Notify call
    fanout_calls: int  # pg_fanout: measured calls (median)
    same_user_streams: int  # fanout_same_user: streams of the one user
    same_user_rounds: int  # fanout_same_user: measured Notify calls (median)
    resume_missed: int  # resume: notifications missed before reconnecting
    resume_rounds: int  # resume: measured reconnects (median)
    pg_seed_rows: int  # pg_get_notifications: rows in the one inbox
    server_env: dict[str, str] = field(default_factory=dict)  # extra NOTIFY_* (``--env``)
    profile: bool = False  # sample each notifyd with py-spy (``--profile``)
    # How to start notifyd; empty: the notifyd of this venv. ``--baseline``
    # sets it to another tree's interpreter, so only the server differs.
    notifyd: tuple[str, ...] = ()

    @classmethod
    def make(cls, *, quick: bool) -> Settings:
        return cls(
            quick=quick,
            duration_s=2 if quick else 8,
            warmup_s=1 if quick else 2,
            connections=32,
            # One wrk thread is plenty: it uses < 0.15 of a core here.
            wrk_threads=1,
            grpc_processes=2,
            grpc_channels=4,
            stream_count=100 if quick else 1000,
            stream_samples=100 if quick else 500,
            streams_per_channel=100,
            seed_rows=1000,
            many_streams=500 if quick else 5000,
            fanout_users=1000,
            fanout_calls=3 if quick else 10,
            same_user_streams=200 if quick else 1000,
            same_user_rounds=3 if quick else 10,
            resume_missed=200 if quick else 1000,
            resume_rounds=2 if quick else 5,
            pg_seed_rows=10_000 if quick else 100_000,
        )


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    value: float
    unit: str
    target: float | None = None
    at_least: bool = True  # True: value >= target meets it; False: value <= target

    @property
    def ratio(self) -> float | None:
        return self.value / self.target if self.target else None

    @property
    def meets(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.at_least else self.value <= self.target


@dataclass(slots=True)
class Report:
    name: str
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    checks: list[tuple[str, bool]] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)
    # Cores other processes kept busy during the measured window: above NOISY
    # the figures say more about the neighbours than about notifyd.
    other_load: float = 0.0

    @property
    def noisy(self) -> bool:
        return self.other_load > NOISY

    def check(self, description: str, ok: bool) -> None:
        self.checks.append((description, ok))


# Other processes that belong to a measurement (PostgreSQL): a context manager
# whose list gets (name, cores used over the block) when the block ends.
OtherCpuMeter = Callable[[], AbstractContextManager[list[tuple[str, float]]]]


def no_other_cpu() -> AbstractContextManager[list[tuple[str, float]]]:
    return contextlib.nullcontext([])


def with_server(
    settings: Settings,
    report: Report,
    body: Callable[[Notifyd], None],
    env: dict[str, str] | None = None,
) -> Report:
    """Runs ``body`` against a fresh notifyd, then SIGTERMs it and checks the exit.

    ``env``: the measurement's own NOTIFY_* settings; ``--env`` overrides them.
    """
    server = Notifyd(
        extra_env={**(env or {}), **settings.server_env}, command=settings.notifyd
    ).start()
    profiler: Profiler | None = None
    try:
        profiler = Profiler(server.pid) if settings.profile else None
        body(server)
        server.check_alive()
    finally:
        started = time.monotonic()
        code = server.stop()
        stopped_s = time.monotonic() - started
        warnings = server.warnings()
        server.close_log()
        if profiler is not None:
            report.profile = profiler.finish()
    report.check(f"notifyd exited cleanly on SIGTERM (rc={code}, {stopped_s:.2f} s)", code == 0)
    report.check(f"notifyd logged no unexpected warnings or errors ({len(warnings)})", not warnings)
    report.details += [f"server log: {line[:300]}" for line in warnings[:5]]
    return report


# -- 1. Notify, Connect JSON over HTTP/1.1 (wrk) ------------------------------


def notify_http(settings: Settings) -> Report:
    report = Report("notify_http", "Notify, Connect JSON over HTTP/1.1 (wrk)")

    def body(server: Notifyd) -> None:
        url = server.internal_url
        tag = f"h{os.getpid()}-{int(time.time())}"
        common = {"connections": settings.connections, "threads": settings.wrk_threads}
        wrk.run_wrk(
            server,
            url,
            wrk.notify_script(tag + "w", NOTIFY_USERS),
            duration_s=settings.warmup_s,
            **common,
        )
        stored_before = server.metric_sum("notify_notifications_stored_total")
        result = wrk.run_wrk(
            server,
            url,
            wrk.notify_script(tag, NOTIFY_USERS),
            duration_s=settings.duration_s,
            **common,
        )
        stored = server.metric_sum("notify_notifications_stored_total") - stored_before
        report.figures += wrk_figures("Notify, Connect JSON / HTTP/1.1", result, 5000)
        report.details.append(
            f"{result.requests:,} requests in {result.duration_s:.1f} s, "
            f"{settings.connections} connections, {settings.wrk_threads} wrk thread(s); "
            f"p90 {result.p90_ms:.2f} ms, max {result.max_ms:.1f} ms"
        )
        report.details.append(cpu_line(report, result.server_cpu, "wrk", result.wrk_cpu_cores))
        report.check(f"non-2xx responses: {result.errors_status}", result.errors_status == 0)
        report.check(f"socket errors: {result.errors_socket}", result.errors_socket == 0)
        report.check(
            f"every request stored a new row: {int(stored):,} rows created for "
            f"{result.requests:,} completed requests (<= {settings.connections} more in flight)",
            result.requests <= stored <= result.requests + settings.connections,
        )

    return with_server(settings, report, body)


# -- 2. Notify over gRPC (grpc.aio workers) -----------------------------------


def grpc_notify(settings: Settings) -> Report:
    report = Report("grpc_notify", "Notify over gRPC (grpc.aio load workers)")

    def body(server: Notifyd) -> None:
        stored_before = server.metric_sum("notify_notifications_stored_total")
        result = grpc_load.run(
            server,
            processes=settings.grpc_processes,
            concurrency=settings.connections,
            channels=settings.grpc_channels,
            warmup_s=settings.warmup_s,
            duration_s=settings.duration_s,
            tag=f"g{os.getpid()}-{int(time.time())}",
        )
        stored = server.metric_sum("notify_notifications_stored_total") - stored_before
        report.figures += [
            Figure("Notify, gRPC", result.rps, "req/s", 5000),
            Figure("  latency p50", result.p50_ms, "ms"),
            Figure("  latency p99", result.p99_ms, "ms"),
        ]
        report.details.append(
            f"{result.calls:,} calls completed in the {result.window_s:.0f} s window; "
            f"{result.concurrency} in flight over {result.channels} channels "
            f"(TCP connections) in {result.processes} worker processes; "
            f"p90 {result.p90_ms:.2f} ms, max {result.max_ms:.1f} ms"
        )
        report.details.append(
            cpu_line(report, result.server_cpu, "load workers", result.client_cpu_cores)
        )
        errors = sum(result.errors.values())
        report.check(f"failed calls: {errors} {result.errors or ''}".rstrip(), errors == 0)
        # Rows are also stored during warm-up and after the window closes.
        report.check(
            f"every call stored a new row: {int(stored):,} rows created in the whole run "
            f"for {result.calls:,} calls counted in the window",
            stored >= result.calls,
        )

    return with_server(settings, report, body)


# -- 3. GetNotifications, a 1,000-row inbox (wrk) ------------------------------


def get_notifications(settings: Settings) -> Report:
    report = Report(
        "get_notifications",
        f"GetNotifications, Connect JSON over HTTP/1.1 (wrk), {settings.seed_rows:,}-row inbox",
    )

    def body(server: Notifyd) -> None:
        seeded_s = asyncio.run(_seed_inbox(server, settings.seed_rows))
        load_get_notifications(server, settings, report, rows=settings.seed_rows, seeded_s=seeded_s)

    return with_server(settings, report, body)


def load_get_notifications(
    server: Notifyd,
    settings: Settings,
    report: Report,
    *,
    rows: int,
    seeded_s: float,
    target: float = 5000,
    label: str = "GetNotifications (limit 20)",
    newest_id: str | None = None,
    meter: OtherCpuMeter = no_other_cpu,
) -> None:
    """Checks the seeded inbox's first page, then wrk's GetNotifications {limit: 20}."""
    page = asyncio.run(first_page(server))
    found = len(page.get("notifications", []))
    unread = int(page.get("unreadCount", 0))
    first_id = page["notifications"][0]["notificationId"] if found else ""
    report.check(
        f"seeded {rows:,} rows in {seeded_s:.2f} s; the first page has "
        f"{found} rows, unreadCount {unread}, a next cursor: {bool(page.get('nextCursor'))}"
        + (f", newest first ({first_id})" if newest_id else ""),
        found == 20
        and unread == rows
        and bool(page.get("nextCursor"))
        and (newest_id is None or first_id == newest_id),
    )
    script = wrk.static_post_script(
        wrk.GET_NOTIFICATIONS_PATH,
        '{"limit":20}',
        {"Authorization": f"Bearer dev:{READER}:{TENANT}"},
    )
    common = {"connections": settings.connections, "threads": settings.wrk_threads}
    url = server.client_url
    wrk.run_wrk(server, url, script, duration_s=settings.warmup_s, **common)
    with meter() as others:
        result = wrk.run_wrk(server, url, script, duration_s=settings.duration_s, **common)
    report.figures += wrk_figures(label, result, target)
    report.details.append(
        f"{result.requests:,} requests in {result.duration_s:.1f} s, "
        f"{settings.connections} connections; p90 {result.p90_ms:.2f} ms, "
        f"max {result.max_ms:.1f} ms"
    )
    report.details.append(cpu_line(report, result.server_cpu, "wrk", result.wrk_cpu_cores, others))
    report.check(f"non-2xx responses: {result.errors_status}", result.errors_status == 0)
    report.check(f"socket errors: {result.errors_socket}", result.errors_socket == 0)


async def _seed_inbox(server: Notifyd, rows: int) -> float:
    started = time.perf_counter()
    numbers = iter(range(rows))

    async def worker() -> None:
        connection = await h1.Connection("127.0.0.1", server.ports.internal).connect()
        try:
            for number in numbers:
                payload = {
                    "tenantId": TENANT,
                    "notificationId": f"seed-{number}",
                    "userIds": [READER],
                    "channels": ["DELIVERY_CHANNEL_IN_APP"],
                    "title": f"Seeded notification {number}",
                    "body": "A body of a realistic length for an in-app notification.",
                }
                response = await connection.post_json(wrk.NOTIFY_PATH, payload, {})
                if response.status != 200:
                    raise RuntimeError(f"seeding Notify answered {response.status}")
        finally:
            await connection.close()

    await asyncio.gather(*(worker() for _ in range(8)))
    return time.perf_counter() - started


async def first_page(server: Notifyd) -> dict[str, Any]:
    connection = await h1.Connection("127.0.0.1", server.ports.client).connect()
    try:
        response = await connection.post_json(
            wrk.GET_NOTIFICATIONS_PATH,
            {"limit": 20},
            {"Authorization": f"Bearer dev:{READER}:{TENANT}"},
        )
    finally:
        await connection.close()
    if response.status != 200:
        raise RuntimeError(f"GetNotifications answered {response.status}: {response.body!r}")
    page: dict[str, Any] = response.json()
    return page


# -- 4. Open streams: delivery latency and memory per stream ------------------


def run_streams(
    settings: Settings, protocol: str, name: str, title: str, count: int | None = None
) -> Report:
    """``count`` streams (default ``settings.stream_count``) for as many users."""
    report = Report(name, title)

    def body(server: Notifyd) -> None:
        result = streams.run(
            server,
            protocol=protocol,
            streams=count or settings.stream_count,
            samples=settings.stream_samples,
            per_connection=settings.streams_per_channel,
        )
        label = "gRPC" if protocol == "grpc" else "Connect/HTTP1.1"
        report.figures += [
            Figure(f"Delivery p50, {result.streams:,} {label} streams", result.latency(50), "ms"),
            Figure(
                f"Delivery p99, {result.streams:,} {label} streams",
                result.latency(99),
                "ms",
                5.0,
                at_least=False,
            ),
            Figure(
                f"Server RSS per {label} stream, {result.streams:,} open",
                result.per_stream_kib,
                "KiB",
                40.0,
                at_least=False,
            ),
        ]
        report.details += [
            f"{result.streams:,} streams (distinct users) over {result.connections:,} TCP "
            f"connections, all handshakes in {result.open_s:.2f} s; open-file limits: "
            f"notifyd {server.fd_limit():,}, this client "
            f"{resource.getrlimit(resource.RLIMIT_NOFILE)[0]:,}",
            f"server VmRSS {result.rss_before_kib / 1024:.1f} MiB before -> "
            f"{result.rss_after_kib / 1024:.1f} MiB with the streams open",
            f"{len(result.latencies_ms)} delivered samples: p50 {result.latency(50):.2f} ms, "
            f"p90 {result.latency(90):.2f} ms, p99 {result.latency(99):.2f} ms, "
            f"max {result.latency(100):.2f} ms (Notify response itself: p50 "
            f"{result.notify_latency(50):.2f} ms, p99 {result.notify_latency(99):.2f} ms)",
            f"server's own delivery histogram (stored -> frame handed to the stream): "
            f"mean {result.server_delivery_mean_ms:.3f} ms",
            "while sampling, "
            + cpu_line(report, result.server_cpu, "this client", result.client_cpu_cores),
            f"notifyd CPU per Notify + delivery: "
            f"{result.server_cpu.seconds / max(1, len(result.latencies_ms)) * 1000:.2f} ms",
        ]
        report.check(
            f"notify_streams_open gauge = {result.streams_open_metric:.0f} "
            f"(expected {result.streams})",
            result.streams_open_metric == result.streams,
        )
        report.check(f"frames lost (none within 5 s): {result.lost}", result.lost == 0)
        report.check(
            f"NotifyResponse.delivered = 1 for {result.delivered_reported} of "
            f"{len(result.latencies_ms)} samples",
            result.delivered_reported == len(result.latencies_ms),
        )

    return with_server(settings, report, body)


def streams_grpc(settings: Settings) -> Report:
    return run_streams(
        settings,
        "grpc",
        "streams",
        f"{settings.stream_count:,} open StreamEvents streams, gRPC (grpc.aio, "
        f"{settings.streams_per_channel} streams per channel)",
    )


def streams_connect(settings: Settings) -> Report:
    return run_streams(
        settings,
        "connect",
        "streams_connect",
        f"{settings.stream_count:,} open StreamEvents streams, Connect JSON over HTTP/1.1",
    )


def wrk_figures(label: str, result: wrk.WrkResult, target: float) -> list[Figure]:
    """Throughput against its target, latency and errors of one wrk run."""
    return [
        Figure(label, result.rps, "req/s", target),
        Figure("  latency p50", result.p50_ms, "ms"),
        Figure("  latency p99", result.p99_ms, "ms"),
        Figure("  non-2xx responses", result.errors_status, "", 0, at_least=False),
    ]


def cpu_line(
    report: Report,
    server: CpuReading,
    client: str,
    client_cores: float,
    also: Sequence[tuple[str, float]] = (),
) -> str:
    """Where the CPU went, in cores: 1.00 is all of one core (notifyd's ceiling).

    ``also``: other processes that belong to the measurement (PostgreSQL), in
    cores; they are not counted as background load.
    """
    accounted = server.cores + client_cores + sum(cores for _, cores in also)
    others = max(0.0, server.machine_cores - accounted)
    report.other_load = max(report.other_load, others)
    noisy = " -- NOISY: other processes were busy, rerun on a quiet machine" * (others > NOISY)
    extra = "".join(f", {name} {cores:.2f}" for name, cores in also)
    return (
        f"CPU in cores: notifyd {server.cores:.2f} ({server.user_cores:.2f} user + "
        f"{server.system_cores:.2f} sys; one event loop, so 1.00 is its ceiling), "
        f"{client} {client_cores:.2f}{extra}, everything else {others:.2f} "
        f"(other processes, softirq) of {os.cpu_count()}{noisy}"
    )
