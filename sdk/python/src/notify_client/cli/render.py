"""What notifyctl prints: readable lines and tables on a terminal, or JSON with --json.

Results go to stdout, one JSON document per line with --json (so ``jq`` and
line-by-line readers work on ``tail``); messages and errors go to stderr.
Text from the server is never read as rich markup.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from rich.console import Console
from rich.table import Table
from rich.text import Text

from notify_client.errors import NotifyError
from notify_client.proto import pb

# Piped output is not cut to 80 columns: a line per row, for grep and friends.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 10_000)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "success": "green", "info": "cyan"}


def as_json(message: Message, *, defaults: bool = False) -> dict[str, Any]:
    """The proto JSON form (camelCase, as the HTTP API speaks it).

    ``defaults`` prints zero values too, as the server's Connect JSON does for
    counts (``{"unread":0,...}``): a script reads a key without a fallback.
    """
    return MessageToDict(message, always_print_fields_with_no_presence=defaults)


def print_json(value: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n")
    sys.stdout.flush()


def error(problem: NotifyError | str, *, json_mode: bool, code: str = "usage") -> None:
    """An error line on stderr; ``code`` names a problem notifyctl found itself."""
    if json_mode:
        if isinstance(problem, NotifyError):
            body = {"code": problem.code.value, "message": problem.message}
        else:
            body = {"code": code, "message": problem}
        sys.stderr.write(json.dumps({"error": body}) + "\n")
    else:
        err.print(Text(f"notifyctl: {problem}", style="red"))


def note(text: str) -> None:
    """A line for the person, on stderr (so stdout stays data)."""
    err.print(Text(text, style="dim"))
    sys.stderr.flush()


def _when(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if epoch_ms else ""


def _enum_name(prefix: str, name: str) -> str:
    return name.removeprefix(prefix).lower()


def severity(n: pb.Notification) -> str:
    return _enum_name("SEVERITY_", pb.Severity.Name(n.severity)) if n.severity else ""


def status(n: pb.Notification) -> str:
    return _enum_name("DELIVERY_STATUS_", pb.DeliveryStatus.Name(n.status))


def notification_line(n: pb.Notification) -> Text:
    line = Text(_when(n.created_at_ms or n.delivered_at_ms)[11:] + "  ")
    if sev := severity(n):
        line.append(f"{sev:<8}", style=_SEVERITY_STYLE.get(sev, ""))
    line.append(n.title, style="bold")
    if n.body:
        line.append(" - " + n.body)
    details = [n.subject_ref, f"id={n.id}"] if n.subject_ref else [f"id={n.id}"]
    line.append("  [" + " ".join(details) + "]", style="dim")
    return line


def event_line(event: pb.StreamEvent) -> Text | None:
    """One readable line for a stream event; None for those a person needs not see."""
    kind = event.WhichOneof("event")
    if kind == "notification":
        return notification_line(event.notification.notification)
    if kind == "data_change":
        change = event.data_change
        line = Text(datetime.now().strftime("%H:%M:%S") + "  ")
        line.append("changed ", style="magenta")
        line.append(change.subject_ref)
        if change.subject_type:
            line.append(f" ({change.subject_type})")
        line.append(f"  [key={change.idempotency_key}]", style="dim")
        return line
    return None


def inbox_table(page: pb.GetNotificationsResponse) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("ID", "STATUS", "CREATED", "SEVERITY"):
        table.add_column(column, no_wrap=True)
    table.add_column("TITLE", overflow="fold")
    table.add_column("SUBJECT", overflow="fold")
    for n in page.notifications:
        unread = n.status < pb.DELIVERY_STATUS_READ
        table.add_row(
            n.id,
            Text(status(n), style="bold" if unread else "dim"),
            _when(n.created_at_ms),
            Text(severity(n), style=_SEVERITY_STYLE.get(severity(n), "")),
            Text(n.title, style="bold" if unread else ""),
            n.subject_ref,
        )
    return table
