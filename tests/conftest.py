from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.pg import PostgresCluster, migrate_schema, truncate
from tests.support import ServerThread, running_server

DRIVERS = ["memory", "postgres"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One real PostgreSQL for the session (fsync on), with the schema applied."""
    cluster = PostgresCluster()
    try:
        cluster.start()
        cluster.create_database()
        asyncio.run(migrate_schema(cluster.dsn()))
        yield cluster
    finally:
        cluster.destroy()


_databases = itertools.count(1)


@pytest.fixture
def pg_database(pg_cluster: PostgresCluster) -> tuple[PostgresCluster, str]:
    """A database of its own on the session's cluster, for one test: no rows,
    presence or leases left by another. The cluster and the database's name."""
    name = f"test_{next(_databases)}"
    pg_cluster.create_database(name)
    return pg_cluster, name


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_overrides(driver: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """Config overrides for the driver under test, on an empty database."""
    if driver == "memory":
        return {}
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    asyncio.run(truncate(cluster.dsn()))
    return {"store_driver": "postgres", "postgres_dsn": cluster.dsn()}


@pytest.fixture
def server(store_overrides: dict[str, Any]) -> Iterator[ServerThread]:
    """A dev-mode server on free ports, once per store driver."""
    with running_server(**store_overrides) as srv:
        yield srv


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client
