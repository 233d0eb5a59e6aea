"""``--profile``: sample notifyd with py-spy during a measurement, print its hot spots.

py-spy is not a project dependency: ``.venv/bin/pip install py-spy``. It
pauses the process for each sample (at ``RATE`` Hz), which costs notifyd a
little throughput, so figures from a profiled run are not the bench's
figures; the shares of time per function are what it is for. Native code
(uvloop, protobuf's upb, the kernel) is charged to the Python line that
called it, so e.g. a socket write's syscall shows as ``transport.write``'s
caller.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

RATE = 100
_FRAME = re.compile(r"(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
# Frames every sample has (the interpreter and the event loop's entry).
_ROOTS = ("<module>", "main (notify/__main__.py)", "run (uvloop/__init__.py)", "Runner.run")


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


class Profiler:
    """Records one process until it exits (or ``stop``), then summarises."""

    def __init__(self, pid: int) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/pip install py-spy")
        self._out = Path(tempfile.mkstemp(prefix="bench-profile-", suffix=".txt")[1])
        self._proc = subprocess.Popen(
            [binary, "record", "-p", str(pid), "-r", str(RATE), "-f", "raw", "-o", str(self._out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def finish(self, top: int = 12) -> list[str]:
        """Waits for py-spy (the target must have exited) and returns summary lines."""
        try:
            self._proc.wait(60)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        try:
            return summarise(self._out.read_text(), top)
        finally:
            self._out.unlink(missing_ok=True)


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match.group("file")
    path = re.sub(r".*/site-packages/", "", path)
    path = re.sub(r".*/src/", "", path)
    path = re.sub(r".*/lib/python3\.\d+/", "", path)
    return f"{match.group('func')} ({path})"


def summarise(raw: str, top: int) -> list[str]:
    """Self and inclusive shares of samples per function, from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [_short(frame) for frame in stack.split(";")]
        total += samples
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return ["profile: no samples (was notifyd idle?)"]
    lines = [f"profile: {total:,} samples at {RATE} Hz; self time (the function's own lines):"]
    lines += [f"  {n / total * 100:5.1f}%  {name}" for name, n in own.most_common(top)]
    lines.append("inclusive time (the function and what it calls):")
    shown = 0
    for name, n in inclusive.most_common():
        if name.startswith(_ROOTS):
            continue
        lines.append(f"  {n / total * 100:5.1f}%  {name}")
        shown += 1
        if shown == top + 8:
            break
    return lines
