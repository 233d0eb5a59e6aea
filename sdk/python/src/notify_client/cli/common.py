"""What several notifyctl commands share: the --json flag, acting as a user, usage errors."""

from __future__ import annotations

import argparse
import os

from notify_client.user import UserClient, dev_token


class UsageError(Exception):
    """Input notifyctl refuses before calling the server (exit 2)."""


def json_flag() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON, one document a line")
    return common


def as_user(parser: argparse.ArgumentParser) -> None:
    """The client port's URL and the credentials of the user a command acts as."""
    group = parser.add_argument_group("credentials (client port)")
    group.add_argument(
        "--client-url",
        default=os.environ.get("NOTIFY_CLIENT_URL", "http://localhost:8080"),
        help="client port base URL (NOTIFY_CLIENT_URL)",
    )
    group.add_argument(
        "--token",
        default=os.environ.get("NOTIFY_TOKEN"),
        help="a user's JWT (NOTIFY_TOKEN); else a dev token from --user/--tenant",
    )
    group.add_argument("--user", default="user-alice", help="dev-mode user (default user-alice)")
    group.add_argument("--tenant", default="acme", help="dev-mode tenant (default acme)")


def as_producer(parser: argparse.ArgumentParser) -> None:
    """The internal port's URL and token (commands a backend would run)."""
    parser.add_argument(
        "--internal-url",
        default=os.environ.get("NOTIFY_INTERNAL_URL", "http://localhost:8081"),
        help="internal port base URL (NOTIFY_INTERNAL_URL)",
    )
    parser.add_argument("--internal-token", help="internal token (default NOTIFY_INTERNAL_TOKEN)")


def user_client(args: argparse.Namespace) -> UserClient:
    token = args.token or dev_token(args.user, args.tenant)
    return UserClient(args.client_url, token=token)
