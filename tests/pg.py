"""A throwaway PostgreSQL cluster for the tests: real server, temp dir, free port.

Uses Debian's PostgreSQL binaries (installing the ``postgresql`` package when
they are missing). initdb refuses to run as root, so as root the cluster is
run by the ``postgres`` user the package creates. fsync stays on: durability
tests mean it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from notify.store.migrate import migrate

DATABASE = "notify"
SUPERUSER = "notify"


def _find_bin() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(found[-1]).parent if found else None


def ensure_installed() -> Path:
    """The PostgreSQL bin dir, installing Debian's package first if needed."""
    bin_dir = _find_bin()
    if bin_dir is not None:
        return bin_dir
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run(install, env=env, check=True, capture_output=True)
    bin_dir = _find_bin()
    if bin_dir is None:
        raise RuntimeError("installed postgresql but found no initdb under /usr/lib/postgresql")
    return bin_dir


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    def __init__(self) -> None:
        self.bin_dir = ensure_installed()
        self.root = Path(tempfile.mkdtemp(prefix="notify-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-instructions")  # fmt: skip

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / tool), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed: {result.stderr or result.stdout}")
        return result

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=on -c synchronous_commit=on -c max_connections=200 "
            "-c shared_buffers=128MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str = DATABASE) -> None:
        psql = str(self.bin_dir / "psql")
        command = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres",
                   "-v", "ON_ERROR_STOP=1", "-c", f'CREATE DATABASE "{name}"']  # fmt: skip
        subprocess.run(command, check=True, capture_output=True)

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


async def migrate_schema(dsn: str) -> None:
    """Applies the service's migrations, as notifyd does on start."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()


async def truncate(dsn: str) -> None:
    """Empties every table, so each test starts from nothing."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "TRUNCATE notifications, inbox_counts, inbox_changes, devices, notify_outbox, "
            "notify_preferences, notify_tenant_preferences"
        )
    finally:
        await conn.close()
