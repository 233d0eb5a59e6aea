"""The ``notifyctl`` entry point: checks the [cli] extra is installed, then runs the app."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    try:
        from notify_client.cli import app
    except ModuleNotFoundError as exc:
        if exc.name in {"rich", "prometheus_client"}:
            print(f"notifyctl needs {exc.name}: pip install 'notify-client[cli]'", file=sys.stderr)
            return 1
        raise
    return app.run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
