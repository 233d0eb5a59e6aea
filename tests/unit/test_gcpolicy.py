"""The collector's policy for a serving process (notify.gcpolicy), in a child interpreter:
freezing and raising thresholds in the test process would change every other test."""

from __future__ import annotations

import json
import subprocess
import sys

from notify import gcpolicy

PROBE = """
import gc, json
import notify.server  # what a serving process has loaded by then
from notify import gcpolicy
before = gc.get_freeze_count()
gcpolicy.settle()
cycle = []
cycle.append(cycle)  # garbage only the collector can free
del cycle
print(json.dumps({
    "before": before,
    "frozen": gc.get_freeze_count(),
    "threshold": gc.get_threshold(),
    "collected": gc.collect(),
}))
"""


def test_settle_freezes_start_up_and_raises_the_thresholds() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout)
    assert seen["before"] == 0
    assert seen["frozen"] > 10_000  # the modules and descriptors of a loaded server
    assert seen["threshold"] == [
        gcpolicy.YOUNG_THRESHOLD,
        gcpolicy.MIDDLE_THRESHOLD,
        gcpolicy.OLD_THRESHOLD,
    ]
    assert seen["collected"] >= 1  # cycles made after settling are still collected
