"""The memory driver runs the conformance suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from notify.store import Store
from notify.store.conformance import *  # noqa: F403  (the suite's tests)
from notify.store.memory import MemoryStore


@pytest.fixture
async def store() -> AsyncIterator[Store]:
    opened = MemoryStore()
    try:
        yield opened
    finally:
        await opened.close()
