"""``notifyd``: start the service, or apply database migrations, from the environment."""

from __future__ import annotations

import contextlib
import os
import sys

import uvloop

from notify import logs
from notify.config import Config, ConfigError, load_config
from notify.http.patches import PatchError
from notify.server import serve
from notify.store.factory import StoreStartupError, migrate_database

USAGE = """usage: notifyd [serve | migrate]

  serve    run the service (the default)
  migrate  apply pending PostgreSQL migrations, then exit

Configured by NOTIFY_* variables; see README.md."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "serve"
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command not in ("serve", "migrate") or len(args) > 1:
        print(f"notifyd: unknown arguments {' '.join(args)!r} (try --help)", file=sys.stderr)
        return 2
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"notifyd: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    try:
        if command == "migrate":
            return uvloop.run(_migrate(config))
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(serve(config))
    except (StoreStartupError, PatchError) as exc:
        print(f"notifyd: {exc}", file=sys.stderr)
        return 1
    return 0


async def _migrate(config: Config) -> int:
    """For operators who apply migrations by hand (NOTIFY_POSTGRES_AUTOMIGRATE=false)."""
    if config.store_driver != "postgres":
        print("notifyd migrate: needs NOTIFY_STORE_DRIVER=postgres", file=sys.stderr)
        return 2
    applied = await migrate_database(config)
    print(f"notifyd migrate: applied {', '.join(applied) or 'nothing (up to date)'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
