"""The operator's edges of the real ``notifyd``: arguments, one-line failures, dev-mode binding."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from notify import __version__
from notify.config import VARIABLES
from tests.e2e.test_process import Notifyd
from tests.pg import PostgresCluster, free_port

NOTIFYD = str(Path(sys.executable).with_name("notifyd"))
STRONG = "0123456789abcdef" * 3


def run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """notifyd with only the given NOTIFY_* variables (none inherited from this shell)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    environ.update(env)
    return subprocess.run([NOTIFYD, *args], env=environ, capture_output=True, text=True, timeout=60)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout == f"notifyd {__version__}\n"


def test_help_lists_the_subcommands_and_every_variable_with_its_default() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("serve", "migrate", "--version", "--help"):
        assert f"  {command}  " in result.stdout
    for variable in VARIABLES:
        assert f"{variable.name}  [{variable.default}]" in result.stdout


def test_unknown_argument_is_one_line_exit_2() -> None:
    result = run("--frobnicate")
    assert result.returncode == 2
    assert "unknown arguments '--frobnicate'" in one_line(result)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"NOTIFY_CLIENT_PORT": "abc"}, "NOTIFY_CLIENT_PORT: 'abc' is not a port number"),
        (
            {"NOTIFY_ALLOWED_ORIGINS": "localhost:5173"},
            "NOTIFY_ALLOWED_ORIGINS: 'localhost:5173' is not an origin",
        ),
        (
            {"NOTIFY_STORE_DRIVER": "postgres", "NOTIFY_POSTGRES_DSN": "mysql://u:pw1@db/x"},
            "NOTIFY_POSTGRES_DSN: mysql:// is not PostgreSQL",
        ),
        ({"NOTIFY_LOG_LEVEL": "chatty"}, "NOTIFY_LOG_LEVEL: 'chatty' is not one of"),
    ],
)
def test_bad_values_are_one_line_exit_2(env: dict[str, str], says: str) -> None:
    began = time.monotonic()
    result = run(NOTIFY_AUTH_DEV_MODE="true", **env)
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith("notifyd: configuration error: ")
    assert says in line
    assert "invalid literal" not in line
    assert "pw1" not in result.stderr
    assert time.monotonic() - began < 10  # refused, not retried as "not reachable"


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        (
            {"NOTIFY_AUTH_JWT_SECRET": "CHANGE-ME-to-a-random-secret-of-at-least-32-bytes",
             "NOTIFY_INTERNAL_TOKEN": STRONG},
            "NOTIFY_AUTH_JWT_SECRET: is the shipped placeholder",
        ),
        (
            {"NOTIFY_AUTH_JWT_SECRET": STRONG, "NOTIFY_INTERNAL_TOKEN": "CHANGE-ME-internal-token"},
            "NOTIFY_INTERNAL_TOKEN: is the shipped placeholder",
        ),
        (
            {"NOTIFY_AUTH_JWT_SECRET": STRONG, "NOTIFY_INTERNAL_TOKEN": "a"},
            "NOTIFY_INTERNAL_TOKEN: must be at least 32 bytes",
        ),
    ],
)  # fmt: skip
def test_production_start_refuses_weak_secrets(env: dict[str, str], variable: str) -> None:
    result = run(**env)
    assert result.returncode == 2
    assert variable in one_line(result)


def test_a_port_in_use_is_one_line_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            NOTIFY_AUTH_DEV_MODE="true",
            NOTIFY_CLIENT_PORT="0",
            NOTIFY_INTERNAL_PORT=str(port),
            NOTIFY_METRICS_PORT="0",
        )
    assert result.returncode == 1
    assert one_line(result) == (
        f"notifyd: cannot listen on 127.0.0.1:{port} (NOTIFY_INTERNAL_PORT):"
        " the port is already in use"
    )


def non_loopback_ipv4() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture
def dev_notifyd() -> Iterator[Notifyd]:
    process = Notifyd(NOTIFY_HOST="")  # no bind address given: dev mode picks loopback
    yield process
    process.stop()


def test_dev_mode_binds_loopback_and_says_so(dev_notifyd: Notifyd) -> None:
    warning = dev_notifyd.wait_for_log(
        "DEV MODE IS ON: dev tokens are accepted and the internal token is not checked; "
        "never run this in production (listening on 127.0.0.1; NOTIFY_BIND_HOST changes it)"
    )
    assert warning["level"] == "warning"
    started = dev_notifyd.wait_for_log("notify started")
    assert started["host"] == "127.0.0.1"
    port = started["metrics_port"]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    other = non_loopback_ipv4()
    if other is not None:  # the machine has another address: nothing listens there
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((other, port), timeout=5).close()
    dev_notifyd.proc.send_signal(signal.SIGTERM)
    assert dev_notifyd.proc.wait(timeout=15) == 0


def test_log_lines_never_carry_a_raw_line_separator(dev_notifyd: Notifyd) -> None:
    started = dev_notifyd.wait_for_log("notify started")
    base = f"http://127.0.0.1:{started['internal_port']}"
    forged = '","level":"error","msg":"forged'
    with httpx.Client(timeout=10) as http:
        http.post(
            f"{base}/elloloop.notify.v1.NotificationInternalService/Notify",
            headers={"X-Request-Id": f"a\xc2\x85{forged}".encode("latin-1")},
            json={"tenantId": "t", "notificationId": "n", "userIds": ["u"]},
        )
        http.post(f"{base}/x%E2%80%A8{forged}%C2%85%E2%80%A9y", json={})
    dev_notifyd.proc.send_signal(signal.SIGTERM)
    assert dev_notifyd.proc.wait(timeout=15) == 0
    dev_notifyd._reader.join(timeout=10)
    text = "".join(dev_notifyd.log)
    for separator in ("\u2028", "\u2029", "\x85"):
        assert separator not in text
    entries = [json.loads(line) for line in text.splitlines()]  # a line-splitting reader
    assert not [e for e in entries if e.get("msg") == "forged"]
    rpcs = [e for e in entries if e["msg"] == "rpc"]
    assert rpcs[0]["request_id"] == f"a\xc2\x85{forged}"  # the value itself survives, escaped
    assert rpcs[1]["procedure"] == f"/x\u2028{forged}\x85\u2029y"


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    own = PostgresCluster()
    own.start()
    own.create_database()
    yield own
    own.destroy()


def test_migrate_needs_only_the_dsn(cluster: PostgresCluster) -> None:
    first = run("migrate", NOTIFY_POSTGRES_DSN=cluster.dsn())
    assert first.returncode == 0, first.stderr
    assert "applied 0001_notifications" in first.stdout
    again = run("migrate", NOTIFY_POSTGRES_DSN=cluster.dsn())
    assert again.returncode == 0, again.stderr
    assert "nothing (up to date)" in again.stdout


def test_migrate_without_a_dsn_is_one_line_exit_2() -> None:
    result = run("migrate")
    assert result.returncode == 2
    assert one_line(result) == "notifyd: configuration error: NOTIFY_POSTGRES_DSN: required"


def test_migrate_against_nothing_gives_up_at_the_deadline() -> None:
    dsn = f"postgresql://notify:pw2@127.0.0.1:{free_port()}/notify"
    began = time.monotonic()
    result = run("migrate", NOTIFY_POSTGRES_DSN=dsn, NOTIFY_POSTGRES_CONNECT_TIMEOUT="2s",
                 NOTIFY_LOG_LEVEL="error")  # fmt: skip
    elapsed = time.monotonic() - began
    assert result.returncode == 1
    assert one_line(result).startswith("notifyd: cannot reach PostgreSQL after 2s")
    assert "pw2" not in result.stderr
    assert elapsed >= 2.0  # honoured to the second, not given up early


def test_an_unreadable_public_key_file_is_one_line_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    result = run(NOTIFY_AUTH_JWT_PUBLIC_KEY_FILE=str(missing), NOTIFY_INTERNAL_TOKEN=STRONG,
                 NOTIFY_CLIENT_PORT="0", NOTIFY_INTERNAL_PORT="0", NOTIFY_METRICS_PORT="0",
                 NOTIFY_BIND_HOST="127.0.0.1")  # fmt: skip
    assert result.returncode == 2
    assert one_line(result).startswith(
        f"notifyd: configuration error: NOTIFY_AUTH_JWT_PUBLIC_KEY_FILE: cannot read {missing}"
    )


def test_a_jwks_that_cannot_be_fetched_is_one_line_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"
    result = run(NOTIFY_AUTH_JWT_JWKS_URL=url, NOTIFY_INTERNAL_TOKEN=STRONG,
                 NOTIFY_CLIENT_PORT="0", NOTIFY_INTERNAL_PORT="0", NOTIFY_METRICS_PORT="0",
                 NOTIFY_BIND_HOST="127.0.0.1", NOTIFY_LOG_LEVEL="error")  # fmt: skip
    assert result.returncode == 1
    assert one_line(result).startswith(f"notifyd: cannot load NOTIFY_AUTH_JWT_JWKS_URL ({url}):")


@pytest.mark.parametrize("args", [["--help"], ["vapid-keys"]])
def test_output_cut_short_by_its_reader_ends_quietly(args: list[str]) -> None:
    """`notifyd --help | head -1`: the reader is gone; no BrokenPipeError trace, no exit 1."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before the first write
    try:
        result = subprocess.run(
            [NOTIFYD, *args],
            stdout=write_end,
            capture_output=False,
            stderr=subprocess.PIPE,
            env=dict(os.environ),
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    assert "BrokenPipe" not in stderr, stderr
    assert result.returncode == -signal.SIGPIPE  # as any Unix filter ends there
