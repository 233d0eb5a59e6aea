from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import ServerThread, running_server


@pytest.fixture
def server() -> Iterator[ServerThread]:
    """A dev-mode server on the memory store, on free ports."""
    with running_server() as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
