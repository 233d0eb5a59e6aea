"""wrk (HTTP/1.1 load) with generated Lua scripts, and its JSON summary.

wrk is installed with apt-get when missing. Every script's ``done`` hook
prints one ``BENCH_JSON {...}`` line (requests, errors, latency percentiles
in microseconds), which is what we parse, not wrk's human-readable report.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from bench.server import CpuReading, Notifyd, cpu_meter

NOTIFY_PATH = "/elloloop.notify.v1.NotificationInternalService/Notify"
GET_NOTIFICATIONS_PATH = "/elloloop.notify.v1.NotificationClientService/GetNotifications"
MARK_NOTIFICATIONS_PATH = "/elloloop.notify.v1.NotificationClientService/MarkNotifications"

_MARKER = "BENCH_JSON "

_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
    .. '"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_status":%d,'
    .. '"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""

# Unique notificationId per request: "<run tag>-<thread number>-<per-thread counter>".
# The recipient cycles through `users` users so no single inbox takes every row.
_NOTIFY = r"""
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

local counter = 0
local headers = {["Content-Type"] = "application/json"}
local path = %(path)s
local users = %(users)d
local prefix

function init(args)
  prefix = %(tag)s .. "-" .. thread_no .. "-"
end

function request()
  counter = counter + 1
  local body = '{"tenantId":"bench","notificationId":"' .. prefix .. counter
    .. '","userIds":["user-' .. (counter %% users) .. '"],'
    .. '"channels":["DELIVERY_CHANNEL_IN_APP"],"title":"Build finished","body":"ok"}'
  return wrk.format("POST", path, headers, body)
end
"""

_STATIC_POST = r"""
wrk.method = "POST"
wrk.path = %(path)s
wrk.body = %(body)s
wrk.headers["Content-Type"] = "application/json"
%(extra_headers)s
"""


def lua_string(text: str) -> str:
    """A Lua string literal (JSON escaping is valid Lua for printable ASCII)."""
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"only printable ASCII goes into the Lua scripts, not {text!r}")
    return json.dumps(text)


def lua_bytes(data: bytes) -> str:
    """A Lua string literal holding exactly ``data`` (binary bodies: decimal escapes)."""
    out = []
    for byte in data:
        char = chr(byte)
        if char.isascii() and char.isprintable() and char not in '"\\':
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def notify_script(tag: str, users: int) -> str:
    return (
        _NOTIFY % {"path": lua_string(NOTIFY_PATH), "tag": lua_string(tag), "users": users} + _DONE
    )


def static_post_script(path: str, body: str, headers: dict[str, str]) -> str:
    extra = "\n".join(
        f"wrk.headers[{lua_string(name)}] = {lua_string(value)}" for name, value in headers.items()
    )
    return (
        _STATIC_POST % {"path": lua_string(path), "body": lua_string(body), "extra_headers": extra}
        + _DONE
    )


# One of several bodies per request, in turn: each connection walks the bodies
# (the pages of an inbox, by cursor) so every page is loaded as often.
_ROTATING_POST = r"""
local bodies = {%(bodies)s}
local headers = {["Content-Type"] = %(content_type)s%(extra_headers)s}
local path = %(path)s
local next_body = 0

function request()
  next_body = next_body %% #bodies + 1
  return wrk.format("POST", path, headers, bodies[next_body])
end
"""


def rotating_post_script(
    path: str,
    bodies: Sequence[str | bytes],
    headers: dict[str, str],
    content_type: str = "application/json",
) -> str:
    """POSTs ``bodies`` in turn (one Lua state per wrk thread, so per thread).

    Text bodies must be printable ASCII; bytes (binary protobuf) go in as they are.
    """
    if not bodies:
        raise ValueError("rotating_post_script needs at least one body")
    extra = "".join(
        f", [{lua_string(name)}] = {lua_string(value)}" for name, value in headers.items()
    )
    return (
        _ROTATING_POST
        % {
            "bodies": ", ".join(
                lua_bytes(body) if isinstance(body, bytes) else lua_string(body) for body in bodies
            ),
            "content_type": lua_string(content_type),
            "extra_headers": extra,
            "path": lua_string(path),
        }
        + _DONE
    )


def ensure_wrk() -> str:
    """The wrk binary; apt-get installs it if missing (apt-get update only on failure)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("  wrk not found: apt-get install -y wrk", flush=True)
    install = ["apt-get", "install", "-y", "-qq", "wrk"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        print("  install failed: apt-get update, then retry", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still not on PATH after apt-get install")
    return found


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    errors_status: int  # responses with status >= 400 (wrk's "Non-2xx or 3xx")
    errors_socket: int  # connect + read + write + timeout
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: CpuReading
    wrk_cpu_cores: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def run_wrk(
    server: Notifyd,
    url: str,
    script: str,
    *,
    duration_s: int,
    connections: int = 32,
    threads: int = 1,
) -> WrkResult:
    """Runs wrk against ``url`` and returns its numbers plus server and wrk CPU use."""
    binary = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-") as lua:
        lua.write(script)
        lua.flush()
        command = [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--timeout",
            "10s",
            "-s",
            lua.name,
            url,
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with cpu_meter(server.pid) as server_cpu:
            done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    lines = [line for line in done.stdout.splitlines() if line.startswith(_MARKER)]
    if not lines:
        raise RuntimeError(f"wrk printed no summary:\n{done.stdout}\n{done.stderr}")
    data = json.loads(lines[-1][len(_MARKER) :])
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        errors_status=data["errors_status"],
        errors_socket=sum(
            data[key] for key in ("errors_connect", "errors_read", "errors_write", "errors_timeout")
        ),
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        server_cpu=server_cpu,
        wrk_cpu_cores=wrk_cpu / server_cpu.wall if server_cpu.wall else 0.0,
    )
