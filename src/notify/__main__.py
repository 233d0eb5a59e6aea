"""``notifyd``: start the service, or apply database migrations, from the environment.

Every failure an operator can cause ends in one line on stderr, never a
traceback: exit 2 for a configuration error, 1 when start-up fails (a port
in use, the database unreachable).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import signal
import sys

import uvloop

from notify import __version__, logs
from notify.auth import AuthStartupError
from notify.config import Config, ConfigError, check_production_secrets, help_text, load_config
from notify.http.patches import PatchError
from notify.store.factory import StoreStartupError, migrate_database
from notify.workers import WORKER_COMMAND, become_worker, supervise

USAGE = """usage: notifyd [serve | migrate | vapid-keys [--public] | --version | --help]

  serve      run the service (the default)
  migrate    apply pending PostgreSQL migrations to NOTIFY_POSTGRES_DSN, then exit
  vapid-keys print a new Web Push (VAPID) key pair: the private key for
             NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY and the public key browsers subscribe
             with; --public prints the public key of the configured private key
  --version  print the version
  --help     print this text

environment (variable, default, meaning):
{variables}

Durations read like 30s, 500ms, 2m. See README.md for the details."""

_PORT_VARIABLES = {
    "client_port": "NOTIFY_CLIENT_PORT",
    "internal_port": "NOTIFY_INTERNAL_PORT",
    "metrics_port": "NOTIFY_METRICS_PORT",
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "serve"
    if command in ("-h", "--help", "help"):
        # Piped into head or less: end quietly when the reader stops (only here;
        # the server must keep Python's ignored SIGPIPE for its sockets).
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        print(USAGE.format(variables=help_text()))
        return 0
    if command in ("-V", "--version", "version"):
        print(f"notifyd {__version__}")
        return 0
    if command == "vapid-keys":
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head -1` ends it quietly too
        return _vapid_keys(args[1:])
    worker: tuple[int, int] | None = None
    if command == WORKER_COMMAND and len(args) == 3 and args[1].isdigit() and args[2].isdigit():
        # Started by the supervisor of NOTIFY_WORKERS > 1 only (notify/workers.py).
        worker = (int(args[1]), int(args[2]))
        command, args = "serve", ["serve"]
    if command not in ("serve", "migrate") or len(args) > 1:
        print(f"notifyd: unknown arguments {' '.join(args)!r} (try --help)", file=sys.stderr)
        return 2
    try:
        config = load_config(os.environ, require_secrets=command == "serve")
        if command == "serve":
            check_production_secrets(config)
    except ConfigError as exc:
        print(f"notifyd: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    if worker is not None:
        become_worker(*worker)
    try:
        if command == "migrate":
            return uvloop.run(_migrate(config))
        if config.workers > 1 and worker is None:
            return _supervise(config)
        return _serve(config)
    except ConfigError as exc:
        print(f"notifyd: configuration error: {exc}", file=sys.stderr)
        return 2
    except (StoreStartupError, AuthStartupError, PatchError) as exc:
        print(f"notifyd: {exc}", file=sys.stderr)
        return 1


def _serve(config: Config) -> int:
    from notify.server import serve

    try:
        with contextlib.suppress(KeyboardInterrupt):
            uvloop.run(serve(config))
    except OSError as exc:
        logs.flush()
        print(f"notifyd: {_describe_listen_error(config, exc)}", file=sys.stderr)
        return 1
    return 0


def _supervise(config: Config) -> int:
    try:
        return supervise(config)
    except OSError as exc:
        logs.flush()
        print(f"notifyd: {_describe_listen_error(config, exc)}", file=sys.stderr)
        return 1


def _describe_listen_error(config: Config, exc: OSError) -> str:
    """Names the address and the variable behind it, from the bind error's text."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno == errno.EADDRINUSE:
        reason = "the port is already in use"
    found = re.search(r"\('([^']*)', (\d+)", str(exc))
    if not found:
        return f"cannot listen on {config.host}: {reason}"
    port = int(found.group(2))
    variables = [name for field, name in _PORT_VARIABLES.items() if getattr(config, field) == port]
    named = f" ({', '.join(variables)})" if variables else ""
    return f"cannot listen on {found.group(1)}:{port}{named}: {reason}"


async def _migrate(config: Config) -> int:
    """For operators who apply migrations by hand (NOTIFY_POSTGRES_AUTOMIGRATE=false)."""
    if not config.postgres_dsn:
        print("notifyd: configuration error: NOTIFY_POSTGRES_DSN: required", file=sys.stderr)
        return 2
    applied = await migrate_database(dataclasses.replace(config, store_driver="postgres"))
    print(f"notifyd migrate: applied {', '.join(applied) or 'nothing (up to date)'}")
    return 0


def _vapid_keys(options: list[str]) -> int:
    """A new key pair as environment lines, or the configured key's public half."""
    from notify.core import vapidkeys

    if options not in ([], ["--public"]):
        print(f"notifyd: unknown arguments {' '.join(options)!r} (try --help)", file=sys.stderr)
        return 2
    if options:
        configured = os.environ.get("NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY", "")
        if not configured.strip():
            print(
                "notifyd: configuration error: NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY: required",
                file=sys.stderr,
            )
            return 2
        try:
            key = vapidkeys.load_private_key(configured)
        except vapidkeys.VapidKeyError as exc:
            print(
                f"notifyd: configuration error: NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY: {exc}",
                file=sys.stderr,
            )
            return 2
        print(vapidkeys.public_key_b64url(key))
        return 0
    key = vapidkeys.generate_private_key()
    print("# Web Push (VAPID) keys: keep the private key secret; browsers subscribe with")
    print("# the public key (pushManager.subscribe({applicationServerKey: ...})).")
    print(f"NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY={vapidkeys.private_key_b64url(key)}")
    print(f"VAPID_PUBLIC_KEY={vapidkeys.public_key_b64url(key)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
