"""The garbage collector's policy for a serving process, applied once it has started.

By the time notifyd serves, it holds a few hundred thousand long-lived
objects (modules, protobuf descriptors, the generated codecs, the pool) that
will never be garbage. CPython's defaults (700, 10, 10) make every tenth
young collection a middle one and every hundredth middle one a full one, and
every full collection walks all of them again: under load that is a pause of
several milliseconds landing in whichever Notify or fan-out is running
(``docs/benchmarks.md``, "Rich rows from kept row bytes"). So, once started:

- ``gc.freeze()`` moves everything alive into the permanent generation,
  which collections never traverse;
- the young threshold rises, so the many short-lived objects of a request
  (frames, messages, dicts) are mostly freed by reference counting before
  any collection looks at them, and the older generations are visited less
  often.

Cycles are still collected: only how often, not whether. The price is
memory: up to ``YOUNG_THRESHOLD`` uncollected container objects between
young collections (a few MiB).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000
MIDDLE_THRESHOLD = 20
OLD_THRESHOLD = 100


def settle() -> None:
    """Freezes what start-up built and sets the thresholds above (call once, when serving)."""
    gc.collect()  # what start-up left as garbage goes now, not into the permanent generation
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
