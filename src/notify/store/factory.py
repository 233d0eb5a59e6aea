"""Opens the store driver the configuration names."""

from __future__ import annotations

from notify.config import Config
from notify.store import Store
from notify.store.memory import MemoryStore


async def open_store(config: Config) -> Store:
    if config.store_driver == "memory":
        return MemoryStore()
    raise ValueError(f"unknown store driver {config.store_driver!r}")
