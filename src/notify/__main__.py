"""``notifyd``: start the service from the NOTIFY_* environment."""

from __future__ import annotations

import contextlib
import os
import sys

import uvloop

from notify import logs
from notify.config import ConfigError, load_config
from notify.server import serve


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in ("-h", "--help"):
        print(
            "usage: notifyd [serve]\n\nConfiguration comes from NOTIFY_* variables; see README.md."
        )
        return 0
    if args and args[0] != "serve":
        print(f"notifyd: unknown command {args[0]!r} (try --help)", file=sys.stderr)
        return 2
    try:
        config = load_config(os.environ)
    except ConfigError as exc:
        print(f"notifyd: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(serve(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
