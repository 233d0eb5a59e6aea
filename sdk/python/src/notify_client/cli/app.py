"""notifyctl: the top-level parser, and send, tail and health.

The inbox commands (inbox, counts, mark, delete) are in ``inbox.py``,
preferences in ``prefs.py``. Exit codes (``exits.py``): 0 ok, 1 server error
or unreachable, 2 usage (bad flags or input, or invalid_argument from the
server), 3 unauthenticated, 4 not found. Every command takes ``--json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from google.protobuf.json_format import Parse as parse_json
from google.protobuf.json_format import ParseError
from rich.text import Text

from notify_client.cli import exits, inbox, prefs, render, values, vapid
from notify_client.cli import health as health_check
from notify_client.cli.common import UsageError, as_producer, as_user, json_flag, user_client
from notify_client.client import NotifyClient
from notify_client.errors import NotifyError
from notify_client.payload import CHANNELS, SEVERITIES, new_key, notify_request
from notify_client.proto import pb
from notify_client.retry import RetryPolicy

Command = Callable[[argparse.Namespace], int]

EPILOG = """\
exit codes: 0 ok, 1 server error or unreachable, 2 usage (or invalid_argument),
3 unauthenticated, 4 not found (an id that is not the user's)

environment: NOTIFY_INTERNAL_URL (default http://localhost:8081),
NOTIFY_CLIENT_URL (http://localhost:8080), NOTIFY_METRICS_URL
(http://localhost:9090), NOTIFY_INTERNAL_TOKEN, NOTIFY_TOKEN (a user's JWT)
"""


def parser() -> argparse.ArgumentParser:
    common = json_flag()
    top = argparse.ArgumentParser(
        prog="notifyctl",
        description="Send, watch and manage notify notifications from a terminal.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    send = commands.add_parser(
        "send",
        parents=[common],
        help="send a notification (Notify)",
        description="Send a notification. Flags for every field, or --stdin for a "
        "NotifyRequest as JSON (the HTTP API's form, e.g. the README's curl body).",
    )
    as_producer(send)
    send.add_argument("--deadline", type=values.duration, default=5.0, help="total, with retries")
    send.add_argument("--stdin", action="store_true", help="read a NotifyRequest as JSON")
    send.add_argument("--tenant", help="tenant id (required without --stdin)")
    send.add_argument("--user", action="append", default=[], help="a recipient (repeatable)")
    send.add_argument("--title")
    send.add_argument("--body", default="")
    send.add_argument("--id", dest="notification_id", help="idempotency key (default: random)")
    send.add_argument("--channel", action="append", default=[], choices=sorted(CHANNELS))
    send.add_argument("--subject-ref", default="")
    send.add_argument("--subject-type", default="")
    send.add_argument("--severity", choices=list(SEVERITIES))
    send.add_argument("--category", default="")
    send.add_argument(
        "--action",
        action="append",
        default=[],
        type=values.action,
        help="id=ID,label=LABEL[,url=URL][,primary] (repeatable)",
    )
    send.add_argument("--data", type=values.json_object, help="a JSON object for the UI")
    send.add_argument("--tag", action="append", default=[])
    send.add_argument("--image-url", default="")
    expiry = send.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", type=values.duration, help="e.g. 90s, 15m, 2h, 7d")
    expiry.add_argument("--expires-at", type=values.instant, help="ISO 8601 or epoch seconds")
    send.add_argument("--deliver-at", type=values.instant, help="ISO 8601 or epoch seconds")
    send.add_argument("--collapse-key", default="")
    send.add_argument(
        "--address",
        action="append",
        default=[],
        type=values.address,
        help="USER:CHANNEL=ADDRESS, e.g. user-alice:email=alice@example.com (repeatable)",
    )
    send.set_defaults(run=cmd_send)

    tail = commands.add_parser(
        "tail", parents=[common], help="watch a user's live events (StreamEvents)"
    )
    as_user(tail)
    tail.add_argument("--resume-token", default="", help="replay what came after this event")
    tail.add_argument("--count", type=int, default=0, help="exit after this many events")
    tail.add_argument(
        "--heartbeats", action="store_true", help="also print heartbeats (--json prints all)"
    )
    tail.set_defaults(run=cmd_tail)

    inbox.add_commands(commands, common)
    prefs.add_commands(commands, common)
    vapid.add_commands(commands, common)

    health = commands.add_parser("health", parents=[common], help="readiness and a metrics summary")
    health.add_argument(
        "--metrics-url",
        default=os.environ.get("NOTIFY_METRICS_URL", "http://localhost:9090"),
        help="health/metrics port base URL (NOTIFY_METRICS_URL)",
    )
    health.add_argument("--timeout", type=values.duration, default=5.0)
    health.set_defaults(run=cmd_health)
    return top


def run(argv: Sequence[str]) -> int:
    args = parser().parse_args(argv)  # exits 2 on bad flags
    command: Command = args.run
    try:
        return command(args)
    except NotifyError as error:
        render.error(error, json_mode=args.json)
        return exits.for_error(error)
    except UsageError as problem:
        render.error(str(problem), json_mode=args.json)
        return exits.USAGE
    except KeyboardInterrupt:
        return exits.OK


_PAYLOAD_FLAGS = (
    "tenant",
    "user",
    "title",
    "notification_id",
    "channel",
    "severity",
    "action",
    "data",
    "tag",
    "expires_in",
    "expires_at",
    "deliver_at",
    "address",
)


def _request_from_stdin(args: argparse.Namespace) -> pb.NotifyRequest:
    given = [f for f in _PAYLOAD_FLAGS if getattr(args, f) not in (None, [], "")]
    if given:
        raise UsageError("--stdin takes the whole request: drop --" + given[0].replace("_", "-"))
    try:
        request = parse_json(sys.stdin.read(), pb.NotifyRequest())
    except ParseError as exc:
        raise UsageError(f"stdin is not a NotifyRequest: {exc}") from None
    if not request.notification_id:
        request.notification_id = new_key()
    return request


def _request_from_flags(args: argparse.Namespace) -> pb.NotifyRequest:
    missing = [f"--{f}" for f in ("tenant", "user", "title") if not getattr(args, f)]
    if missing:
        raise UsageError(f"send needs {', '.join(missing)} (or --stdin)")
    addresses: dict[str, dict[str, str]] = {}
    for user, channel, value in args.address:
        addresses.setdefault(user, {})[channel] = value
    try:
        return notify_request(
            tenant_id=args.tenant,
            user_ids=args.user,
            title=args.title,
            body=args.body,
            notification_id=args.notification_id,
            channels=args.channel,
            subject_ref=args.subject_ref,
            subject_type=args.subject_type,
            severity=args.severity,
            category=args.category,
            actions=args.action,
            data=args.data,
            tags=args.tag,
            image_url=args.image_url,
            expires_at=args.expires_at,
            expires_in=args.expires_in,
            deliver_at=args.deliver_at,
            collapse_key=args.collapse_key,
            addresses=addresses,
            now=time.time,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cmd_send(args: argparse.Namespace) -> int:
    request = _request_from_stdin(args) if args.stdin else _request_from_flags(args)
    policy = RetryPolicy(deadline=args.deadline)
    with NotifyClient(args.internal_url, token=args.internal_token, retry=policy) as client:
        result = client.send(request)
    # skipped only when preferences skipped some, as the server answers it.
    if args.json:
        answer = {
            "notificationId": result.notification_id,
            "delivered": result.delivered,
            "pending": result.pending,
            "failed": result.failed,
        }
        render.print_json(answer | ({"skipped": result.skipped} if result.skipped else {}))
    else:
        users = len(request.user_ids)
        skipped = f", skipped {result.skipped}" if result.skipped else ""
        render.out.print(
            Text(
                f"sent {result.notification_id} to {users} user{'s' * (users != 1)}: "
                f"delivered {result.delivered}, pending {result.pending}, "
                f"failed {result.failed}{skipped}"
            )
        )
    return exits.OK


def cmd_tail(args: argparse.Namespace) -> int:
    seen = 0
    with user_client(args) as client:
        events = client.stream_events(resume_token=args.resume_token)
        try:
            for number, event in enumerate(events):
                kind = event.WhichOneof("event")
                if number == 0:  # the handshake: the stream is open
                    render.note(f"listening (session {event.session_id}); Ctrl-C to stop")
                if args.json:  # raw: every event, heartbeats included
                    render.print_json(render.as_json(event))
                elif (line := render.event_line(event)) is not None:
                    render.out.print(line)
                    sys.stdout.flush()
                elif kind == "heartbeat" and args.heartbeats:
                    render.out.print(Text("heartbeat", style="dim"))
                if kind in {"notification", "data_change"}:
                    seen += 1
                    if args.count and seen >= args.count:
                        break
        finally:
            events.close()  # type: ignore[attr-defined]
    return exits.OK


def cmd_health(args: argparse.Namespace) -> int:
    try:
        result = health_check.check(args.metrics_url, args.timeout)
    except Exception as exc:  # pyqwest's connection errors have no common public base
        render.error(f"cannot reach {args.metrics_url}: {exc}", json_mode=args.json)
        return exits.SERVER_ERROR
    if args.json:
        render.print_json(
            {"ready": result.ready, "status": result.status, "reason": result.reason}
            | result.metrics
        )
    else:
        m = result.metrics
        status = Text(result.status, style="green" if result.ready else "bold red")
        if result.reason:
            status.append(f" ({result.reason})")
        latency = m.get("deliveryLatencyMeanSeconds")
        rows: list[tuple[str, str | Text]] = [
            ("ready", status),
            ("version", f"{m.get('version', '')} ({m.get('driver', '')} store)"),
            ("streams", f"{m.get('streamsOpen', 0)} open"),
            ("rpcs", f"{m.get('rpcRequests', 0)} ({m.get('rpcErrors', 0)} not ok)"),
            ("stored", f"{m.get('notificationsStored', 0)} notifications"),
            (
                "delivery",
                f"mean {latency * 1000:.1f} ms over {m['deliveries']}"
                if latency is not None
                else "none yet",
            ),
        ]
        for name, value in rows:
            line = Text(f"{name:<10}")
            line.append(value)
            render.out.print(line)
    return exits.OK if result.ready else exits.SERVER_ERROR
