"""Starts and stops the notifyd under test, and reads its ports, RSS and CPU.

Each measurement gets a fresh server (memory store, dev-mode auth, free
ports) so one measurement's stored rows or heap never skew the next. The
server's stderr (its JSON log: one line per RPC at the default level) goes
to a temporary file, not a pipe: nothing in the bench has to keep up with
it, and notifyd never blocks on a full pipe. The startup line gives the
ports; warnings and errors are collected when it stops.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 40.0
# Open files notifyd may have: every stream's connection is one (streams_5k
# opens 5,000). Set on the child with prlimit right after it starts.
FD_LIMIT = 65536
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The rate limits notifyd applies by default (1,000/s per user, 20,000/s per
# producer, 100,000 recipients/s per tenant) would throttle a benchmark that is
# one user and one producer; off, both sides of an A/B run do the same work (a
# tree from before the limits ignores these variables). ``--env`` turns them on.
RATE_LIMITS_OFF = {
    "NOTIFY_RATE_LIMIT_CLIENT": "off",
    "NOTIFY_RATE_LIMIT_PRODUCER": "off",
    "NOTIFY_RATE_LIMIT_RECIPIENTS": "off",
}
# Expected on every dev-mode start; not a finding.
_EXPECTED_WARNINGS = ("DEV MODE IS ON",)
_SERIOUS = ('"level": "warning"', '"level": "error"', '"level": "critical"')


class ServerError(RuntimeError):
    """notifyd failed to start, or died while being measured."""


def notifyd_path() -> str:
    """The notifyd next to the running interpreter (the project venv)."""
    candidate = Path(sys.executable).parent / "notifyd"
    return str(candidate) if candidate.exists() else "notifyd"


@dataclass(frozen=True, slots=True)
class Ports:
    client: int
    internal: int
    metrics: int


class Notifyd:
    """One notifyd subprocess; use as a context manager for a guaranteed SIGTERM."""

    def __init__(
        self,
        *,
        heartbeat_interval: str = "30s",
        extra_env: dict[str, str] | None = None,
        command: tuple[str, ...] = (),
    ):
        # ``command``: the argv that starts notifyd (another tree's, for A/B runs).
        self._command = list(command) or [notifyd_path()]
        self._env = dict(os.environ)
        self._env.update(
            {
                "NOTIFY_AUTH_DEV_MODE": "true",
                "NOTIFY_STORE_DRIVER": "memory",
                "NOTIFY_HOST": "127.0.0.1",
                "NOTIFY_CLIENT_PORT": "0",
                "NOTIFY_INTERNAL_PORT": "0",
                "NOTIFY_METRICS_PORT": "0",
                "NOTIFY_LIVE_HEARTBEAT_INTERVAL": heartbeat_interval,
                **RATE_LIMITS_OFF,
            }
        )
        self._env.update(extra_env or {})
        # Port 0 lets notifyd pick free ports and name them in its "notify started"
        # line, which is logged at info. Above info there is no such line, so the
        # bench picks free ports itself (and waits until they accept connections).
        self._preset: Ports | None = None
        if self._env.get("NOTIFY_LOG_LEVEL", "info").strip().lower() not in ("debug", "info"):
            self._preset = Ports(_free_port(), _free_port(), _free_port())
            self._env["NOTIFY_CLIENT_PORT"] = str(self._preset.client)
            self._env["NOTIFY_INTERNAL_PORT"] = str(self._preset.internal)
            self._env["NOTIFY_METRICS_PORT"] = str(self._preset.metrics)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._ports: Ports | None = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> Notifyd:
        self._log = tempfile.NamedTemporaryFile(prefix="notifyd-bench-", suffix=".log")  # noqa: SIM115
        self._proc = subprocess.Popen(
            self._command,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        with contextlib.suppress(ProcessLookupError):  # died at once: reported below
            raise_fd_limit(self._proc.pid)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while self._ports is None:
            self._ports = self._preset_ports_open() if self._preset else self._startup_ports()
            if self._ports is None:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = self.log_tail()
                    self.stop()
                    raise ServerError(f"notifyd did not start:\n{tail}")
                time.sleep(0.05)
        for child in child_pids(self._proc.pid):  # workers (NOTIFY_WORKERS > 1)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                raise_fd_limit(child)
        return self

    def stop(self) -> int | None:
        """SIGTERM, wait for a clean exit (SIGKILL only past STOP_TIMEOUT)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def close_log(self) -> None:
        if self._log is not None:
            self._log.close()  # deletes the file
            self._log = None

    def __enter__(self) -> Notifyd:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self.close_log()

    def _log_lines(self) -> Iterator[str]:
        if self._log is None:
            return
        with open(self._log.name, "rb") as log:
            for raw in log:
                yield raw.decode("utf-8", "replace").rstrip()

    def _preset_ports_open(self) -> Ports | None:
        assert self._preset is not None
        for port in (self._preset.metrics, self._preset.client, self._preset.internal):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return None
        return self._preset

    def _startup_ports(self) -> Ports | None:
        for line in self._log_lines():
            if '"notify started"' not in line:
                continue
            with contextlib.suppress(ValueError, KeyError):
                entry = json.loads(line)
                return Ports(
                    int(entry["client_port"]),
                    int(entry["internal_port"]),
                    int(entry["metrics_port"]),
                )
        return None

    # -- what the measurements read ------------------------------------------

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def ports(self) -> Ports:
        assert self._ports is not None
        return self._ports

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.client}"

    @property
    def internal_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.internal}"

    @property
    def internal_target(self) -> str:
        return f"127.0.0.1:{self.ports.internal}"

    @property
    def client_target(self) -> str:
        return f"127.0.0.1:{self.ports.client}"

    def check_alive(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            raise ServerError(f"notifyd exited during the measurement:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(collections.deque(self._log_lines(), maxlen=lines))

    def log_line_count(self) -> int:
        return sum(1 for _ in self._log_lines())

    def warnings(self) -> list[str]:
        """Log lines at warning level or above (or not JSON at all), bar the expected ones."""
        found = []
        for line in self._log_lines():
            if line.startswith("{") and not any(level in line for level in _SERIOUS):
                continue
            if any(expected in line for expected in _EXPECTED_WARNINGS):
                continue
            found.append(line)
        return found

    def rss_kib(self) -> int:
        """VmRSS of the server process, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise ServerError("no VmRSS in /proc status")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server has used so far."""
        return proc_cpu_seconds(self.pid)

    def fd_limit(self) -> int:
        """notifyd's soft RLIMIT_NOFILE."""
        return resource.prlimit(self.pid, resource.RLIMIT_NOFILE)[0]

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.ports.metrics}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    def metric_sum(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples whose labels include ``labels``."""
        return metric_sum(self.metrics_text(), name, **labels)


def raise_fd_limit(pid: int = 0, wanted: int = FD_LIMIT) -> None:
    """Raises a process's (0: this one's) open-file limit to ``wanted``, or as far as allowed.

    Raising the hard limit needs root (CAP_SYS_RESOURCE); otherwise the soft
    limit goes up to the hard one.
    """
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (wanted, wanted))
            return
        except (OSError, ValueError):
            pass
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft < target:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (target, hard))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds a process and its live children have used so far.

    The children are notifyd's workers (NOTIFY_WORKERS > 1); one process has none.
    """
    user = system = 0.0
    for number in (pid, *child_pids(pid)):
        try:
            fields = Path(f"/proc/{number}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            if number == pid:
                raise
            continue  # a child that just exited
        # After the ")" the fields start at #3 (state); utime and stime are #14, #15.
        user += int(fields[11]) / _CLOCK_TICKS
        system += int(fields[12]) / _CLOCK_TICKS
    return user, system


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (from /proc/PID/task/*/children)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(number) for number in children.read_text().split()]
    return found


def proc_cpu_seconds(pid: int) -> float:
    user, system = proc_cpu_times(pid)
    return user + system


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (nor waiting for I/O) since boot."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / _CLOCK_TICKS


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric, _, label_text = head.partition("{")
        if metric != name:
            continue
        if all(f'{key}="{val}"' in label_text for key, val in labels.items()):
            total += float(value)
    return total


@contextlib.contextmanager
def cpu_meter(pid: int) -> Iterator[CpuReading]:
    """Measures a process's CPU use, and the whole machine's, over a block."""
    reading = CpuReading()
    user0, system0 = proc_cpu_times(pid)
    machine0, start = machine_busy_seconds(), time.monotonic()
    try:
        yield reading
    finally:
        reading.wall = time.monotonic() - start
        reading.machine = machine_busy_seconds() - machine0
        with contextlib.suppress(OSError):
            user1, system1 = proc_cpu_times(pid)
            reading.user, reading.system = user1 - user0, system1 - system0


@dataclass(slots=True)
class CpuReading:
    """CPU seconds over ``wall`` seconds: the process's (user, system), the machine's busy."""

    user: float = 0.0
    system: float = 0.0
    machine: float = 0.0
    wall: float = 0.0

    @property
    def seconds(self) -> float:
        return self.user + self.system

    @property
    def cores(self) -> float:
        return self.seconds / self.wall if self.wall > 0 else 0.0

    @property
    def user_cores(self) -> float:
        return self.user / self.wall if self.wall > 0 else 0.0

    @property
    def system_cores(self) -> float:
        return self.system / self.wall if self.wall > 0 else 0.0

    @property
    def machine_cores(self) -> float:
        return self.machine / self.wall if self.wall > 0 else 0.0
