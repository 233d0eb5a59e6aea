"""``python -m bench [--quick] [--baseline REV] [measurement ...]``: benchmark notifyd here.

Each measurement starts its own notifyd (memory store, or a throwaway
PostgreSQL cluster for the ``pg_*`` ones; dev-mode auth, free ports on
127.0.0.1), loads it, and SIGTERMs it. ``make bench`` runs them all.
``--baseline REV`` runs each one alternately on REV's notifyd and on the
working tree's, and prints the ratio of the medians per figure;
``--current-env`` changes the working tree's side's environment only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path

from bench import abrun, baseline, report
from bench.ab import Side
from bench.baseline import Tree
from bench.calibrate import loopback_write_us
from bench.measurements import Report, Settings
from bench.profile import py_spy
from bench.registry import DEFAULT, MEASUREMENTS, WRK_MEASUREMENTS, run_one
from bench.server import machine_busy_seconds, raise_fd_limit
from bench.wrk import ensure_wrk


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks notifyd on this machine (load goes to 127.0.0.1 only).",
    )
    parser.add_argument(
        "measurements",
        nargs="*",
        metavar="MEASUREMENT",
        help=f"any of: {', '.join(MEASUREMENTS)} (default: all of them)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 2 s per measurement, fewer streams, rows and repetitions",
    )
    parser.add_argument("--duration", type=int, help="seconds per load measurement")
    parser.add_argument("--streams", type=int, help="open streams for streams/streams_connect")
    parser.add_argument(
        "--streams-per-channel",
        type=int,
        help="gRPC streams multiplexed on one channel (TCP connection); default 100",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="run each measurement N times and show the median run (default 1; "
        "with --baseline: N runs per side, default 3)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="A/B run: any git revision; its notifyd (built into .bench-cache/) and the "
        "working tree's run each measurement in turn; prints current/baseline per figure",
    )
    parser.add_argument("--wrk-threads", type=int, help="wrk threads (default 1)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample notifyd with py-spy (pip install py-spy) and print its hot spots; "
        "py-spy slows it a little, so use the figures of an unprofiled run",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for notifyd, e.g. NOTIFY_LOG_LEVEL=warning (repeatable)",
    )
    parser.add_argument(
        "--current-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="with --baseline: extra notifyd environment for the working tree's side only "
        "(e.g. --baseline HEAD --current-env NOTIFY_RATE_LIMIT_CLIENT=1000000/s: one "
        "setting's cost on the same code)",
    )
    args = parser.parse_args(argv)
    if args.current_env and not args.baseline:
        parser.error("--current-env needs --baseline (it sets one side of an A/B run)")
    for item in args.env + args.current_env:
        name, sep, _ = item.partition("=")
        if not sep or not name:
            parser.error(f"--env and --current-env take NAME=VALUE, not {item!r}")
    unknown = [name for name in args.measurements if name not in MEASUREMENTS]
    if unknown:
        parser.error(f"unknown measurement(s) {', '.join(unknown)}; pick from {list(MEASUREMENTS)}")
    if args.baseline and args.profile:
        parser.error("--profile does not combine with --baseline; profile each tree on its own")
    if args.repeat is None:
        args.repeat = 3 if args.baseline else 1
    if args.repeat < 1:
        parser.error("--repeat takes a positive number")
    return args


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so every notifyd and PostgreSQL cluster is stopped."""
    raise SystemExit(128 + signum)


def _background_load(seconds: float = 1.0) -> float:
    """Cores busy on the machine while the bench itself is idle (other processes)."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    names = args.measurements or list(DEFAULT)
    settings = Settings.make(quick=args.quick)
    overrides = {
        "duration_s": args.duration,
        "stream_count": args.streams,
        "streams_per_channel": args.streams_per_channel,
        "wrk_threads": args.wrk_threads,
    }
    server_env = dict(item.split("=", 1) for item in args.env)
    settings = dataclasses.replace(
        settings,
        server_env=server_env,
        profile=args.profile,
        **{key: value for key, value in overrides.items() if value is not None},
    )
    if args.profile and py_spy() is None:
        print("--profile needs py-spy: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    trees: dict[Side, Tree] | None = None
    if args.baseline:
        try:
            current = baseline.current()
            current_env = dict(item.split("=", 1) for item in args.current_env)
            trees = {
                "baseline": baseline.prepare(args.baseline),
                "current": dataclasses.replace(current, env=current_env),
            }
        except baseline.BaselineError as exc:
            print(f"--baseline {args.baseline}: {exc}", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _terminated)
    # 5,000 HTTP/1.1 streams need 5,000+ sockets here; notifyd gets its own raise.
    raise_fd_limit()
    info = report.machine()
    print("notify benchmark" + (" (--quick: a smoke test, not figures)" if args.quick else ""))
    if args.profile:
        print("  --profile: py-spy slows notifyd; use the hot spots, not these figures")
    print("  " + "; ".join(f"{key}: {value}" for key, value in info.items()))
    print(
        f"  {settings.duration_s} s per measurement after {settings.warmup_s} s warm-up, "
        f"{settings.connections} connections / calls in flight, "
        f"{settings.stream_count:,} streams, {settings.stream_samples} delivery samples",
        flush=True,
    )
    print(
        f"  streams_5k: {settings.many_streams:,} streams; fanout_same_user: "
        f"{settings.same_user_streams:,} streams x {settings.same_user_rounds} rounds; "
        f"resume: {settings.resume_missed:,} missed x {settings.resume_rounds} rounds; "
        f"pg_fanout: {settings.fanout_users:,} users x {settings.fanout_calls} calls; "
        f"pg_get_notifications: {settings.pg_seed_rows:,} rows",
        flush=True,
    )
    if settings.server_env:
        print(f"  notifyd environment: {settings.server_env}")
    for side, tree in (trees or {}).items():
        print(f"  {side}: {tree.label}, {tree.how}; notify from {tree.imports[0]}")
        if tree.env:
            print(f"  {side} only, notifyd environment: {tree.env}")
    if WRK_MEASUREMENTS & set(names):
        ensure_wrk()
    background = _background_load()
    print(f"  background load before starting: {background:.2f} cores busy", flush=True)
    if background > 0.2:
        print("  WARNING: the machine is not idle; figures will be lower than it can do")
    idle_write, busy_write = loopback_write_us()
    print(
        f"  one 200-byte loopback send(): {idle_write:.0f} us when it wakes the peer, "
        f"{busy_write:.0f} us back to back",
        flush=True,
    )
    if trees is not None:
        return abrun.run(names, settings, args.repeat, trees, args.json, info)
    reports: list[Report] = []
    for name in names:
        print(f"\n-- running {name} ...", flush=True)
        started = time.monotonic()
        runs = [run_one(name, settings) for _ in range(args.repeat)]
        result = report.median_run(runs)
        reports.append(result)
        print(report.section(result, time.monotonic() - started), flush=True)
    print("\nSummary")
    print(report.summary(reports))
    if args.json:
        payload = {
            "machine": info,
            "settings": dataclasses.asdict(settings),
            "reports": [dataclasses.asdict(r) for r in reports],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    failed = any(not ok for r in reports for _, ok in r.checks)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
