"""Memory under attack, measured on a real notifyd process (VmRSS and its peak, VmHWM).

The issue's figures: a 0.5 MB gzip bomb grew the process by 1 GB; eight
parallel 100 MB bodies took RSS from 163 MB to 1,052 MB. With the limits the
bomb must cost under 20 MB and the eight bodies under 150 MB above baseline.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_process import Notifyd
from tests.support import CLIENT_SVC, dev_auth

MB = 1024 * 1024


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture(scope="module")
def notifyd() -> Iterator[tuple[Notifyd, int]]:
    proc = Notifyd()
    try:
        port = int(proc.wait_for_log("notify started")["client_port"])
        # Warm the paths under test so their first-use allocations are not counted.
        with httpx.Client(timeout=10) as http:
            url = f"http://127.0.0.1:{port}{CLIENT_SVC}/GetNotifications"
            for _ in range(20):
                http.post(url, headers=dev_auth(), json={"limit": 1})
                http.post(
                    url,
                    headers={**dev_auth(), "Content-Encoding": "gzip"},
                    content=gzip.compress(b'{"limit": 1}'),
                )
        yield proc, port
    finally:
        proc.stop()


def _peak_growth_mb(pid: int, baseline_kb: int) -> float:
    return (_status_kb(pid, "VmHWM") - baseline_kb) / 1024


def _reset_peak(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@pytest.mark.parametrize("authenticated", [True, False])
def test_gzip_bomb_costs_under_20_mb(notifyd: tuple[Notifyd, int], authenticated: bool) -> None:
    proc, port = notifyd
    bomb = gzip.compress(b"\0" * (512 * MB))  # ~0.5 MB on the wire
    assert len(bomb) < 600 * 1024
    pid = proc.proc.pid
    _reset_peak(pid)
    baseline = _status_kb(pid, "VmRSS")
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    if authenticated:
        headers.update(dev_auth())
    with httpx.Client(timeout=30) as http:
        response = http.post(
            f"http://127.0.0.1:{port}{CLIENT_SVC}/GetNotifications", headers=headers, content=bomb
        )
    expected = "resource_exhausted" if authenticated else "unauthenticated"
    assert response.json()["code"] == expected
    assert _peak_growth_mb(pid, baseline) < 20
    print(json.dumps({"gzip_bomb_peak_growth_mb": _peak_growth_mb(pid, baseline)}))


def _send_100_mb(port: int, results: list[bytes]) -> None:
    """A chunked 100 MB body (no Content-Length to refuse up front), until the server stops it."""
    head = (
        f"POST {CLIENT_SVC}/GetNotifications HTTP/1.1\r\nHost: x\r\n"
        "Authorization: Bearer dev:user-alice:acme\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = b" " * (256 * 1024)
    chunk = b"%x\r\n%s\r\n" % (len(piece), piece)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        try:
            for _ in range(400):  # 400 x 256 KiB = 100 MiB
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: the point
        answer = b""
        try:
            while data := sock.recv(65536):
                answer += data
        except ConnectionResetError:
            pass
        results.append(answer)


def test_eight_parallel_100_mb_bodies_stay_under_150_mb(notifyd: tuple[Notifyd, int]) -> None:
    proc, port = notifyd
    pid = proc.proc.pid
    _reset_peak(pid)
    baseline = _status_kb(pid, "VmRSS")
    results: list[bytes] = []
    threads = [threading.Thread(target=_send_100_mb, args=(port, results)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 8
    for answer in results:
        assert answer.startswith(b"HTTP/1.1 429"), answer[:200]
        body = answer.partition(b"\r\n\r\n")[2]
        assert b"resource_exhausted" in body
    assert _peak_growth_mb(pid, baseline) < 150
    assert proc.proc.poll() is None
    # Measured figures, for the report: pytest -s shows them.
    print(
        json.dumps(
            {"baseline_mb": baseline / 1024, "peak_growth_mb": _peak_growth_mb(pid, baseline)}
        )
    )
