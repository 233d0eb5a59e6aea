"""How much one small loopback TCP write costs on this machine.

A request/response server writes each response to a client that is asleep
waiting for it, so every write also wakes a process on another CPU. On a
virtual machine that wake-up is expensive, and part of it is spent outside
the guest's CPU accounting (utime/stime), so a saturated server can show
less than 100% of a core. Knowing the price of one such write tells how
much of a request's budget the 2 (HTTP/1.1) or 3-4 (HTTP/2) writes per
response take.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from bench.stats import percentile

_DRAIN = """
import socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
while conn.recv(65536):
    pass
"""


def loopback_write_us(writes: int = 400, gap_s: float = 0.0005) -> tuple[float, float]:
    """Median µs per 200-byte send() to an idle peer process, and back to back."""
    drain = subprocess.Popen(
        [sys.executable, "-c", _DRAIN], stdout=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    try:
        assert drain.stdout is not None
        port = int(drain.stdout.readline())
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            payload = b"x" * 200
            idle: list[float] = []
            for _ in range(writes):
                deadline = time.perf_counter() + gap_s
                while time.perf_counter() < deadline:  # spin: the peer goes back to sleep
                    pass
                started = time.perf_counter()
                sock.send(payload)
                idle.append((time.perf_counter() - started) * 1e6)
            busy: list[float] = []
            for _ in range(writes):
                started = time.perf_counter()
                sock.send(payload)
                busy.append((time.perf_counter() - started) * 1e6)
    finally:
        drain.wait(10)
    return percentile(sorted(idle), 50), percentile(sorted(busy), 50)
