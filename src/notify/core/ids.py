"""Store ids: UUIDv7 (RFC 9562), monotonic within this process.

Ids sort by creation: 48 bits of epoch milliseconds, then a 74-bit counter
that starts at a random value each millisecond and steps up for every further
id in the same millisecond (RFC 9562, "monotonic random"). The inbox's keyset
order (created_at_ms, id) is therefore creation order, even for rows created
in one millisecond.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

_RAND_BITS = 74
_RAND_MASK = (1 << _RAND_BITS) - 1
_RAND_B_BITS = 62
_lock = threading.Lock()
# Ids need to be unique, not secret (every read checks the caller owns the
# row), so a PRNG seeded from the OS will do; os.urandom per id was a syscall.
_random = random.Random(os.urandom(32))
_last_ms = 0
_last_rand = 0


def new_id(now_ms: int | None = None) -> str:
    global _last_ms, _last_rand
    millis = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    with _lock:
        if millis > _last_ms:
            # A fresh millisecond: start at a random point in its lower half,
            # leaving room to count up.
            rand = _random.getrandbits(_RAND_BITS - 1)
        else:
            # Same millisecond (or the clock stepped back): count up from the last id.
            millis = _last_ms
            rand = _last_rand + 1 + _random.getrandbits(8)
            if rand > _RAND_MASK:
                millis, rand = millis + 1, 0
        _last_ms, _last_rand = millis, rand
    rand_a = rand >> _RAND_B_BITS
    rand_b = rand & ((1 << _RAND_B_BITS) - 1)
    value = (millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | rand_a << 64 | 0x2 << 62 | rand_b
    return str(uuid.UUID(int=value))
