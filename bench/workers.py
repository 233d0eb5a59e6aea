"""More than one process: NOTIFY_WORKERS on one machine, and replicas on one PostgreSQL.

- ``pg_notify_workers``: Notify req/s on PostgreSQL (wrk, as pg_notify) with
  1 and then 2 workers, on the same cluster, and where the CPU went: notifyd
  (the supervisor and its workers), PostgreSQL and wrk share this machine's cores.
- ``pg_cross_replica``: 1,000 streams (one user each, gRPC) on replica A, a
  Notify for one of those users sent to replica B; the time from writing the
  Notify to decoding the frame on the stream, p50/p99 (the hop over
  PostgreSQL LISTEN/NOTIFY included).
- ``pg_fanout_replicas``: 1,000 users with one stream each, spread over 3
  replicas; one Notify to all of them (to the first replica) until the last
  stream has the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

from bench import h1, wrk
from bench.measurements import NOTIFY_USERS, TENANT, Figure, Report, Settings
from bench.pgcluster import Database, database
from bench.server import CpuReading, Notifyd, cpu_meter
from bench.stats import percentile
from bench.streams import GrpcStreams, _deliver, user_name

SETTLE_S = 0.3  # rows a late request may still be committing when wrk stops
WORKER_COUNTS = (1, 2)
WORKERS_TARGET = 1.3  # 2 workers / 1 worker on PostgreSQL Notify
CROSS_P99_TARGET_MS = 10.0
FANOUT_REPLICAS = 3


# -- pg_notify_workers ------------------------------------------------------------


def pg_notify_workers(settings: Settings) -> Report:
    report = Report(
        "pg_notify_workers",
        "Notify on PostgreSQL with NOTIFY_WORKERS=1 and 2 (wrk, Connect/HTTP1.1)",
    )
    rates: dict[int, list[float]] = {workers: [] for workers in WORKER_COUNTS}
    # Alternating rounds (1, 2, 1, 2, ...): a neighbour's load falls on both sides.
    rounds = 1 if settings.quick else 2
    with database() as db:
        report.details.append(db.describe())
        for _ in range(rounds):
            for workers in WORKER_COUNTS:
                env = {**db.env, "NOTIFY_WORKERS": str(workers)}
                with _servers(settings, report, 1, env) as (server,):
                    rates[workers].append(_notify_load(settings, report, db, server, workers))
    medians = {workers: statistics.median(found) for workers, found in rates.items() if found}
    for workers, rate in medians.items():
        label = f"Notify on PostgreSQL, {workers} worker{'s' * (workers > 1)}, median"
        report.figures.append(Figure(label, rate, "req/s"))
    if medians.get(1) and medians.get(2):
        report.figures.append(
            Figure("  2 workers / 1 worker", medians[2] / medians[1], "x", WORKERS_TARGET)
        )
    report.details.append(
        f"{rounds} alternating round(s); req/s per round: "
        + "; ".join(f"{w} worker(s) " + ", ".join(f"{r:,.0f}" for r in rates[w]) for w in rates)
    )
    return report


def _notify_load(
    settings: Settings, report: Report, db: Database, server: Notifyd, workers: int
) -> float:
    url = server.internal_url
    tag = f"w{workers}-{os.getpid()}-{int(time.time())}"
    common = {"connections": settings.connections, "threads": settings.wrk_threads}
    wrk.run_wrk(server, url, wrk.notify_script(tag + "w", NOTIFY_USERS),
                duration_s=settings.warmup_s, **common)  # fmt: skip
    time.sleep(SETTLE_S)
    rows_before = _rows(db)
    supervisor_before = _own_cpu_seconds(server.pid)
    with db.cpu_meter() as pg_cpu:
        result = wrk.run_wrk(server, url, wrk.notify_script(tag, NOTIFY_USERS),
                             duration_s=settings.duration_s, **common)  # fmt: skip
    time.sleep(SETTLE_S)
    rows = _rows(db) - rows_before
    report.details.append(
        f"{workers} worker(s): {result.rps:,.0f} req/s, {result.requests:,} requests in "
        f"{result.duration_s:.1f} s over {settings.connections} connections; p50 "
        f"{result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, max {result.max_ms:.1f} ms"
    )
    supervisor = _own_cpu_seconds(server.pid) - supervisor_before
    split = _cpu_split(report, result.server_cpu, result.wrk_cpu_cores, pg_cpu[0][1])
    if workers > 1 and result.server_cpu.wall:
        split += (
            f"; of notifyd's, the supervisor (log lines passed on, nothing else) used "
            f"{supervisor / result.server_cpu.wall:.2f}"
        )
    report.details.append(f"{workers} worker(s), {split}")
    report.check(
        f"{workers} worker(s): non-2xx {result.errors_status}, socket errors "
        f"{result.errors_socket}",
        result.errors_status == 0 and result.errors_socket == 0,
    )
    report.check(
        f"{workers} worker(s): every request stored a row ({rows:,} rows for "
        f"{result.requests:,} requests)",
        result.requests <= rows <= result.requests + settings.connections,
    )
    served = server.metric_sum(
        "notify_rpc_requests_total",
        procedure="/elloloop.notify.v1.NotificationInternalService/Notify",
        code="ok",
    )
    report.check(
        f"{workers} worker(s): /metrics counted every Notify ({served:,.0f} for "
        f"{result.requests:,} measured + the warm-up)",
        served >= result.requests,
    )
    return result.rps


def _cpu_split(report: Report, server: CpuReading, wrk_cores: float, pg_cores: float) -> str:
    """Where the cores went: notifyd (all its processes), PostgreSQL, wrk, the rest."""
    accounted = server.cores + wrk_cores + pg_cores
    others = max(0.0, server.machine_cores - accounted)
    report.other_load = max(report.other_load, others)
    noisy = " -- NOISY: other processes were busy" * (others > 0.25)
    return (
        f"CPU in cores: notifyd {server.cores:.2f} (supervisor and workers), PostgreSQL "
        f"{pg_cores:.2f}, wrk {wrk_cores:.2f}, everything else {others:.2f} of "
        f"{os.cpu_count()}{noisy}"
    )


def _own_cpu_seconds(pid: int) -> float:
    """CPU seconds of the process alone (proc_cpu_times adds its children, the workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rows(db: Database) -> int:
    return int(db.value("SELECT count(*) FROM notifications"))


# -- replicas ---------------------------------------------------------------------


@contextlib.contextmanager
def _servers(
    settings: Settings, report: Report, count: int, env: dict[str, str]
) -> Iterator[tuple[Notifyd, ...]]:
    """``count`` notifyd processes on one database; each must exit 0 on SIGTERM."""
    servers: list[Notifyd] = []
    try:
        for _ in range(count):
            servers.append(
                Notifyd(extra_env={**env, **settings.server_env}, command=settings.notifyd).start()
            )
        yield tuple(servers)
        for server in servers:
            server.check_alive()
    finally:
        for number, server in enumerate(servers):
            code = server.stop()
            warnings = server.warnings()
            server.close_log()
            report.check(f"notifyd {number + 1} exited cleanly on SIGTERM (rc={code})", code == 0)
            report.check(
                f"notifyd {number + 1} logged no unexpected warnings ({len(warnings)})",
                not warnings,
            )
            report.details += [f"server log: {line[:300]}" for line in warnings[:3]]


def pg_cross_replica(settings: Settings) -> Report:
    streams, samples = settings.stream_count, settings.stream_samples
    report = Report(
        "pg_cross_replica",
        f"{streams:,} gRPC streams on replica A, Notify to replica B: frame latency",
    )
    with database() as db:
        report.details.append(db.describe())
        with _servers(settings, report, 2, db.env) as (a, b):
            latencies, delivered, lost, cpu = asyncio.run(_cross(a, b, streams, samples, "ab"))
            # The same with the Notify sent to A itself: what the hop over the bus adds.
            same, same_delivered, same_lost, _ = asyncio.run(_cross(a, a, streams, samples, "aa"))
        ordered = sorted(latencies)
        reference = sorted(same)
        report.figures += [
            Figure("cross-replica delivery p50", percentile(ordered, 50), "ms"),
            Figure(
                "cross-replica delivery p99", percentile(ordered, 99), "ms",
                CROSS_P99_TARGET_MS, at_least=False,
            ),
            Figure("  same replica p50 (reference)", percentile(reference, 50), "ms"),
            Figure("  same replica p99 (reference)", percentile(reference, 99), "ms"),
        ]  # fmt: skip
        report.check(
            f"same replica: every frame arrived ({same_lost} lost), delivered=1 "
            f"({same_delivered} of {samples})",
            same_lost == 0 and same_delivered == samples,
        )
        report.details.append(
            f"{samples} Notify calls one after another, each for a random one of the "
            f"{streams:,} users; max {ordered[-1]:.2f} ms"
            if ordered
            else "no samples"
        )
        report.details.append(
            f"CPU in cores while sampling: both notifyd {cpu[0]:.2f}, the machine {cpu[1]:.2f}"
        )
        report.check(f"every frame arrived ({lost} lost)", lost == 0)
        report.check(
            f"replica B answered delivered=1 for a stream on A ({delivered} of {samples})",
            delivered == samples,
        )
    return report


async def _cross(
    a: Notifyd, b: Notifyd, streams: int, samples: int, tag: str
) -> tuple[list[float], int, int, tuple[float, float]]:
    pending: dict[int, tuple[str, asyncio.Future[float]]] = {}

    def on_arrival(number: int, notification_id: str) -> None:
        waiting = pending.get(number)
        if waiting is not None and waiting[0] == notification_id and not waiting[1].done():
            waiting[1].set_result(time.perf_counter())

    client = GrpcStreams(a.client_target, 100, on_arrival)
    await client.open(range(streams))
    sender = await h1.Connection("127.0.0.1", b.ports.internal).connect()
    latencies: list[float] = []
    delivered = lost = 0
    try:
        await _presence_settled(b, pending, streams, tag)
        rng = random.Random(11)
        with cpu_meter(a.pid) as cpu_a, cpu_meter(b.pid) as cpu_b:
            for sample in range(samples):
                outcome = await _deliver(sender, pending, rng.randrange(streams), f"{tag}-{sample}")
                if outcome is None:
                    lost += 1
                    continue
                latencies.append(outcome[0] * 1000)
                delivered += outcome[2] == 1
    finally:
        await sender.close()
        await client.close()
    return latencies, delivered, lost, (cpu_a.cores + cpu_b.cores, cpu_a.machine_cores)


async def _presence_settled(
    sender_side: Notifyd,
    pending: dict[int, tuple[str, asyncio.Future[float]]],
    streams: int,
    tag: str,
) -> None:
    """Warm-up Notifies through B until one is delivered: A's presence is known to B."""
    sender = await h1.Connection("127.0.0.1", sender_side.ports.internal).connect()
    try:
        deadline = time.monotonic() + 30
        attempt = 0
        while time.monotonic() < deadline:
            attempt += 1
            outcome = await _deliver(sender, pending, attempt % streams, f"{tag}-warm-{attempt}")
            if outcome is not None and outcome[2] == 1:
                return
        raise RuntimeError("replica B never saw replica A's streams")
    finally:
        await sender.close()


def pg_fanout_replicas(settings: Settings) -> Report:
    users, calls = settings.fanout_users, settings.fanout_calls
    report = Report(
        "pg_fanout_replicas",
        f"one Notify to {users:,} users with a stream each, spread over "
        f"{FANOUT_REPLICAS} replicas ({calls} calls)",
    )
    with database() as db:
        report.details.append(db.describe())
        with _servers(settings, report, FANOUT_REPLICAS, db.env) as servers:
            answered, last, answers, missing = asyncio.run(_fanout(servers, users, calls))
        report.figures += [
            Figure(f"Notify to {users:,} users on 3 replicas, answered",
                   statistics.median(answered), "ms"),
            Figure("  last of the frames arrived", statistics.median(last), "ms"),
        ]  # fmt: skip
        report.details.append(
            f"medians of {calls} calls one after another; answered max {max(answered):.1f} ms, "
            f"last frame max {max(last):.1f} ms"
        )
        wrong = [a for a in answers if a != {"delivered": users}]
        report.check(
            f"every answer is delivered={users} ({len(answers) - len(wrong)} of {len(answers)})",
            not wrong,
        )
        report.check(f"every stream got every call's frame ({missing} missing)", missing == 0)
    return report


async def _fanout(
    servers: tuple[Notifyd, ...], users: int, calls: int
) -> tuple[list[float], list[float], list[dict[str, int]], int]:
    arrivals: dict[str, dict[int, float]] = {}
    complete: dict[str, asyncio.Event] = {}

    def on_arrival(number: int, notification_id: str) -> None:
        got = arrivals.setdefault(notification_id, {})
        got.setdefault(number, time.perf_counter())
        if len(got) == users:
            complete.setdefault(notification_id, asyncio.Event()).set()

    clients = []
    for index, server in enumerate(servers):
        client = GrpcStreams(server.client_target, 100, on_arrival)
        await client.open(range(index, users, len(servers)))
        clients.append(client)
    sender = await h1.Connection("127.0.0.1", servers[0].ports.internal).connect()
    everyone = [user_name(number) for number in range(users)]
    tag = f"fan-{os.getpid()}-{int(time.time())}"

    async def one_call(notification_id: str) -> tuple[float, float, dict[str, int], int]:
        """(answered ms, last frame ms, the answer's non-zero counts, frames that arrived)."""
        payload = {
            "tenantId": TENANT, "notificationId": notification_id, "userIds": everyone,
            "channels": ["DELIVERY_CHANNEL_IN_APP"], "title": "Deploy finished",
        }  # fmt: skip
        everyone_got = complete.setdefault(notification_id, asyncio.Event())
        sent = time.perf_counter()
        response = await sender.post_json(wrk.NOTIFY_PATH, payload, {})
        done = time.perf_counter()
        if response.status != 200:
            raise RuntimeError(f"Notify answered {response.status}: {response.body[:200]!r}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(everyone_got.wait(), 10)
        got = arrivals.get(notification_id, {})
        last = (max(got.values()) - sent) * 1000 if got else 0.0
        answer = {key: value for key, value in response.json().items() if value}
        return (done - sent) * 1000, last, answer, len(got)

    answered: list[float] = []
    last: list[float] = []
    answers: list[dict[str, int]] = []
    missing = 0
    try:
        # Warm-up rounds until every replica's presence rows are seen by the first.
        for warm in range(30):
            if (await one_call(f"{tag}-warm-{warm}"))[2] == {"delivered": users}:
                break
            await asyncio.sleep(0.5)
        for call in range(calls):
            took, last_ms, answer, got = await one_call(f"{tag}-{call}")
            answered.append(took)
            last.append(last_ms)
            answers.append(answer)
            missing += users - got
            await asyncio.sleep(0.05)  # calls one after another, not back to back
    finally:
        await sender.close()
        for client in clients:
            await client.close()
    return answered, last or [0.0], answers, missing
