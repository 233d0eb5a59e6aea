"""gRPC Notify load: grpc.aio worker processes, each with unique notificationIds.

h2load can only replay one body, and every Notify here must carry a new
notificationId, so this is the load generator. ``run`` starts ``processes``
workers (``python -m bench.grpc_load``); each keeps ``concurrency`` calls in
flight over ``channels`` channels (each channel its own TCP connection: a
local subchannel pool stops grpc sharing one), warms up, then counts only
the calls that complete inside a common measurement window. Workers report
their completions, latencies and their own CPU use over the window, so the
report can say whether the load generator or the server was the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass

import grpc
from elloloop.notify.v1 import notify_pb2, notify_pb2_grpc

from bench.server import CpuReading, Notifyd, cpu_meter
from bench.stats import percentile

USERS = 1000


@dataclass(frozen=True, slots=True)
class GrpcLoadResult:
    calls: int
    window_s: float
    errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: CpuReading
    client_cpu_cores: float  # all workers together, over the window
    processes: int
    concurrency: int
    channels: int

    @property
    def rps(self) -> float:
        return self.calls / self.window_s if self.window_s else 0.0


def run(
    server: Notifyd,
    *,
    processes: int,
    concurrency: int,
    channels: int,
    warmup_s: float,
    duration_s: float,
    tag: str,
) -> GrpcLoadResult:
    """``concurrency`` and ``channels`` are totals, split across the processes."""
    startup_slack = 3.0  # interpreter start, imports, channel connect
    start_at = time.monotonic() + startup_slack + warmup_s
    end_at = start_at + duration_s
    workers = []
    for index in range(processes):
        command = [
            sys.executable,
            "-m",
            "bench.grpc_load",
            "--target",
            server.internal_target,
            "--concurrency",
            str(_share(concurrency, processes, index)),
            "--channels",
            str(max(1, _share(channels, processes, index))),
            "--start-at",
            repr(start_at),
            "--end-at",
            repr(end_at),
            "--tag",
            f"{tag}-p{index}",
        ]
        workers.append(
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    try:
        time.sleep(max(0.0, start_at - time.monotonic()))
        with cpu_meter(server.pid) as server_cpu:
            time.sleep(max(0.0, end_at - time.monotonic()))
        reports = []
        for worker in workers:
            out, err = worker.communicate(timeout=duration_s + warmup_s + 120)
            if worker.returncode != 0:
                raise RuntimeError(f"gRPC load worker failed ({worker.returncode}):\n{err}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    latencies = sorted(value for report in reports for value in report["latencies_us"])
    errors: Counter[str] = Counter()
    for report in reports:
        errors.update(report["errors"])
    return GrpcLoadResult(
        calls=sum(report["calls"] for report in reports),
        window_s=duration_s,
        errors=dict(errors),
        p50_ms=percentile(latencies, 50) / 1000,
        p90_ms=percentile(latencies, 90) / 1000,
        p99_ms=percentile(latencies, 99) / 1000,
        max_ms=(latencies[-1] / 1000) if latencies else 0.0,
        server_cpu=server_cpu,
        client_cpu_cores=sum(report["cpu_s"] for report in reports) / duration_s,
        processes=processes,
        concurrency=concurrency,
        channels=channels,
    )


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


# -- the worker process -------------------------------------------------------


async def _worker(args: argparse.Namespace) -> dict[str, object]:
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.aio.insecure_channel(args.target, options=options) for _ in range(args.channels)
    ]
    try:
        for channel in channels:
            await asyncio.wait_for(channel.channel_ready(), 20)
        stubs = [
            notify_pb2_grpc.NotificationInternalServiceStub(c)  # type: ignore[no-untyped-call]
            for c in channels
        ]
        latencies: list[int] = []
        errors: Counter[str] = Counter()
        calls = 0
        start_at, end_at = args.start_at, args.end_at
        in_app = [notify_pb2.DELIVERY_CHANNEL_IN_APP]

        async def caller(number: int) -> None:
            nonlocal calls
            call = stubs[number % len(stubs)].Notify
            prefix = f"{args.tag}-{number}-"
            sequence = 0
            while time.monotonic() < end_at:
                sequence += 1
                request = notify_pb2.NotifyRequest(
                    tenant_id="bench",
                    notification_id=f"{prefix}{sequence}",
                    user_ids=[f"user-{sequence % USERS}"],
                    channels=in_app,
                    title="Build finished",
                    body="ok",
                )
                started = time.perf_counter_ns()
                try:
                    await call(request, timeout=30)
                except grpc.aio.AioRpcError as exc:
                    if start_at <= time.monotonic() <= end_at:
                        errors[exc.code().name] += 1
                    continue
                finished = time.perf_counter_ns()
                if start_at <= time.monotonic() <= end_at:
                    calls += 1
                    latencies.append((finished - started) // 1000)

        async def cpu_window() -> float:
            await asyncio.sleep(max(0.0, start_at - time.monotonic()))
            begin = time.process_time()
            await asyncio.sleep(max(0.0, end_at - time.monotonic()))
            return time.process_time() - begin

        cpu_task = asyncio.create_task(cpu_window())
        await asyncio.gather(*(caller(n) for n in range(args.concurrency)))
        cpu_s = await cpu_task
    finally:
        for channel in channels:
            await channel.close(None)
    return {
        "calls": calls,
        "errors": dict(errors),
        "latencies_us": latencies,
        "cpu_s": cpu_s,
        "pid": os.getpid(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="gRPC Notify load worker (used by bench)")
    parser.add_argument("--target", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--channels", type=int, required=True)
    parser.add_argument("--start-at", type=float, required=True, help="time.monotonic()")
    parser.add_argument("--end-at", type=float, required=True, help="time.monotonic()")
    parser.add_argument("--tag", required=True)
    report = asyncio.run(_worker(parser.parse_args()))
    print(json.dumps(report, separators=(",", ":")))


if __name__ == "__main__":
    main()
