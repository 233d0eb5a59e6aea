"""Live delivery at scale: 5,000 streams, one user's 1,000 streams, and resume.

- ``streams_5k``: the ``streams_connect`` measurement with 5,000 streams.
  Connect JSON over HTTP/1.1, one TCP connection per stream: that is what
  browsers (connect-web) open, and what an HTTP/1.1 reverse proxy opens
  upstream for each of them; gRPC clients multiplexed on few connections
  are covered by ``streams`` (see docs/benchmarks.md for the trade-off).
- ``fanout_same_user``: bench.fanout, with the per-user stream cap raised.
- ``resume`` / ``pg_resume``: bench.resume on the memory store / PostgreSQL.
"""

from __future__ import annotations

import os
import statistics
import time

from bench import fanout, resume
from bench.measurements import Figure, Report, Settings, cpu_line, run_streams, with_server
from bench.pgcluster import database
from bench.server import Notifyd
from bench.stats import percentile


def streams_5k(settings: Settings) -> Report:
    count = settings.many_streams
    return run_streams(
        settings,
        "connect",
        "streams_5k",
        f"{count:,} open StreamEvents streams, Connect JSON over HTTP/1.1, one connection each",
        count=count,
    )


# -- fanout_same_user ----------------------------------------------------------


def fanout_same_user(settings: Settings) -> Report:
    streams, rounds = settings.same_user_streams, settings.same_user_rounds
    report = Report(
        "fanout_same_user",
        f"one Notify to one user with {streams:,} open Connect/HTTP1.1 streams, {rounds} rounds",
    )
    env = {"NOTIFY_LIVE_MAX_STREAMS_PER_USER": str(max(2000, 2 * streams))}

    def body(server: Notifyd) -> None:
        result = fanout.run(
            server, streams=streams, rounds=rounds, tag=f"fan{os.getpid()}-{int(time.time())}"
        )
        last = sorted(result.last_ms)
        median = statistics.median(last) if last else float("nan")
        report.figures += [
            Figure(f"Notify -> last of {streams:,} frames", median, "ms", 50, at_least=False),
            Figure("  Notify -> first frame", _median(result.first_ms), "ms"),
            Figure("  Notify response", _median(result.answer_ms), "ms"),
        ]
        cpu = result.server_cpu
        report.details += [
            f"{streams:,} streams of one user over {streams:,} TCP connections, all "
            f"handshakes in {result.open_s:.2f} s; NOTIFY_LIVE_MAX_STREAMS_PER_USER="
            f"{env['NOTIFY_LIVE_MAX_STREAMS_PER_USER']}",
            f"Notify -> last frame per round: min {last[0] if last else 0:.1f} ms, median "
            f"{median:.1f} ms, max {last[-1] if last else 0:.1f} ms",
            f"notifyd CPU per round (one Notify, {streams:,} frames): "
            f"{cpu.seconds / max(1, rounds) * 1000:.1f} ms, i.e. "
            f"{cpu.seconds / max(1, rounds * streams) * 1e6:.0f} us per frame; this client "
            f"{result.client_cpu_s / max(1, rounds * streams) * 1e6:.0f} us per frame",
            "over the rounds (0.2 s pauses included), "
            + cpu_line(
                report, cpu, "this client", result.client_cpu_s / cpu.wall if cpu.wall else 0
            ),
        ]
        report.check(
            f"notify_streams_open gauge = {result.streams_open_metric:.0f} (expected {streams})",
            result.streams_open_metric == streams,
        )
        report.check(
            f"every stream got every round's frame within {fanout.ROUND_TIMEOUT:.0f} s: "
            f"{rounds - result.incomplete} of {rounds} rounds complete",
            result.incomplete == 0,
        )
        report.check(f"duplicate frames: {result.duplicates}", result.duplicates == 0)
        report.check(
            f"NotifyResponse.delivered = 1 (one row, taken by live streams) in "
            f"{result.delivered.count(1)} of {len(result.delivered)} rounds",
            result.delivered.count(1) == len(result.delivered) == rounds - result.incomplete,
        )
        report.check(
            f"no stream connection dropped: {result.lost_connections}",
            result.lost_connections == 0,
        )

    return with_server(settings, report, body, env=env)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# -- resume / pg_resume --------------------------------------------------------


def _resume(
    settings: Settings, report: Report, store: str, env: dict[str, str] | None = None
) -> Report:
    missed, rounds = settings.resume_missed, settings.resume_rounds

    def body(server: Notifyd) -> None:
        result = resume.run(
            server, missed=missed, rounds=rounds, tag=f"r{os.getpid()}-{int(time.time())}"
        )
        total = sorted(result.total_ms)
        report.figures += [
            Figure(
                f"Resume, {store}: replay {missed:,} missed",
                _median(total),
                "ms",
                200,
                at_least=False,
            ),
            Figure("  open -> handshake", _median(result.handshake_ms), "ms"),
            Figure("  open -> first replayed", _median(result.first_ms), "ms"),
        ]
        if total:
            report.details += [
                f"{rounds} reconnects, each after {missed:,} missed notifications: open -> "
                f"all replayed min {total[0]:.1f} ms, median {_median(total):.1f} ms, max "
                f"{total[-1]:.1f} ms (p90 {percentile(total, 90):.1f} ms)",
                f"CPU from open to the last replayed frame (median): notifyd "
                f"{_median(result.server_cpu_ms):.0f} ms, this client "
                f"{_median(result.client_cpu_ms):.0f} ms (reading and decoding every frame; "
                "the two run in parallel on different cores)",
                "store calls inside the replay (notifyd's histogram, median): "
                + ", ".join(f"{op} {_median(ms):.1f} ms" for op, ms in result.store_ms.items()),
            ]
        report.check(
            f"every replay had exactly the {missed:,} missed notifications, oldest first, "
            f"then the next one live, once: {result.rounds_ok} of {rounds} rounds",
            result.rounds_ok == rounds and not result.problems,
        )
        report.details += result.problems[:5]

    return with_server(settings, report, body, env=env)


def resume_memory(settings: Settings) -> Report:
    title = f"resume after {settings.resume_missed:,} missed notifications (memory store)"
    return _resume(settings, Report("resume", title), "memory store")


def pg_resume(settings: Settings) -> Report:
    title = f"resume after {settings.resume_missed:,} missed notifications (PostgreSQL)"
    report = Report("pg_resume", title)
    with database() as db:
        report.details.append(db.describe())
        return _resume(settings, report, "PostgreSQL", env=db.env)
