"""Settings.notifyd decides which program a measurement starts as its notifyd.

A stand-in server (a few lines of Python, started by the real Notifyd
plumbing) logs the start line with its ports, writes its own argv to a file,
and exits 0 on SIGTERM: so the test sees exactly what the bench ran.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from bench.abrun import side_settings
from bench.baseline import Tree
from bench.measurements import Report, Settings, with_server
from bench.server import Notifyd

FAKE = """
import json, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
open(sys.argv[1], "w").write(json.dumps(sys.argv))
line = {"level": "info", "msg": "notify started",
        "client_port": 1, "internal_port": 2, "metrics_port": 3}
print(json.dumps(line), file=sys.stderr, flush=True)
signal.pause()
"""


def test_a_measurement_starts_the_notifyd_its_settings_name(tmp_path: Path) -> None:
    marker = tmp_path / "argv.json"
    command = (sys.executable, "-c", FAKE, str(marker))
    settings = dataclasses.replace(Settings.make(quick=True), notifyd=command)
    seen: list[Notifyd] = []
    report = with_server(settings, Report("fake", "stand-in"), seen.append)
    assert json.loads(marker.read_text()) == ["-c", str(marker)]
    assert (seen[0].ports.client, seen[0].ports.internal, seen[0].ports.metrics) == (1, 2, 3)
    assert all(ok for _, ok in report.checks), report.checks  # exited 0, no warnings


def test_without_a_command_it_is_this_venvs_notifyd() -> None:
    assert Settings.make(quick=True).notifyd == ()
    assert Notifyd()._command[0].endswith("notifyd")


ENV_FAKE = FAKE.replace(
    "json.dumps(sys.argv)",
    "json.dumps({k: v for k, v in __import__('os').environ.items() if k.startswith('NOTIFY_')})",
)


def _seen_env(
    tmp_path: Path, server_env: dict[str, str], side_env: dict[str, str] | None = None
) -> dict[str, str]:
    """The NOTIFY_* environment a measurement's notifyd got (one A/B side's, via side_settings)."""
    marker = tmp_path / "env.json"
    command = (sys.executable, "-c", ENV_FAKE, str(marker))
    tree = Tree("side", command, (), "stand-in", side_env or {})
    settings = side_settings(
        dataclasses.replace(Settings.make(quick=True), server_env=server_env), tree
    )
    report = with_server(settings, Report("fake", "stand-in"), lambda _: None)
    assert all(ok for _, ok in report.checks), report.checks
    env: dict[str, str] = json.loads(marker.read_text())
    return env


def test_the_bench_turns_the_default_rate_limits_off_on_loopback(tmp_path: Path) -> None:
    env = _seen_env(tmp_path, {})
    assert env["NOTIFY_RATE_LIMIT_CLIENT"] == "off"
    assert env["NOTIFY_RATE_LIMIT_PRODUCER"] == "off"
    assert env["NOTIFY_RATE_LIMIT_RECIPIENTS"] == "off"
    assert env["NOTIFY_HOST"] == "127.0.0.1"  # dev mode's bind address, said explicitly


def test_env_turns_a_rate_limit_back_on(tmp_path: Path) -> None:
    env = _seen_env(tmp_path, {"NOTIFY_RATE_LIMIT_CLIENT": "1000000/s"})
    assert env["NOTIFY_RATE_LIMIT_CLIENT"] == "1000000/s"
    assert env["NOTIFY_RATE_LIMIT_PRODUCER"] == "off"


def test_one_ab_side_gets_its_own_environment_over_env(tmp_path: Path) -> None:
    common = {"NOTIFY_LOG_LEVEL": "info", "NOTIFY_RATE_LIMIT_PRODUCER": "off"}
    on = {"NOTIFY_RATE_LIMIT_PRODUCER": "1000000/s"}
    assert _seen_env(tmp_path, common)["NOTIFY_RATE_LIMIT_PRODUCER"] == "off"
    current = _seen_env(tmp_path, common, on)
    assert current["NOTIFY_RATE_LIMIT_PRODUCER"] == "1000000/s"
    assert current["NOTIFY_LOG_LEVEL"] == "info"
