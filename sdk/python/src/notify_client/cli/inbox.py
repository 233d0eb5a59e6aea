"""notifyctl's inbox commands, as the user: inbox, counts, mark and delete.

``mark`` and ``delete`` take store ids (as ``inbox`` lists them) or ``--all``
with the filter flags. Ids that are not the user's are ignored by the server
(it counts only real changes), so notifyctl checks them and exits 4 when one
does not exist: a script learns that an id was wrong, not just that 0 rows
changed.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from rich.text import Text

from notify_client.cli import exits, filters, render, values
from notify_client.cli.common import UsageError, as_user, user_client
from notify_client.errors import NotifyError
from notify_client.proto import pb
from notify_client.user import UserClient

# Mark flags -> (the contract's Mark, the word the result line uses).
_MARKS: dict[str, tuple[pb.Mark, str]] = {
    "read": (pb.MARK_READ, "read"),
    "unread": (pb.MARK_UNREAD, "unread"),
    "seen": (pb.MARK_SEEN, "seen"),
    "archive": (pb.MARK_ARCHIVED, "archived"),
    "unarchive": (pb.MARK_UNARCHIVED, "unarchived"),
    "snooze": (pb.MARK_SNOOZED, "snoozed"),
    "unsnooze": (pb.MARK_UNSNOOZED, "unsnoozed"),
    "action": (pb.MARK_ACTIONED, "actioned"),
}


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    inbox = commands.add_parser(
        "inbox",
        parents=[common],
        help="list a user's notifications (GetNotifications)",
        description="List a user's notifications, newest first, with the inbox's counts.",
    )
    as_user(inbox)
    inbox.add_argument("--limit", type=int, default=20, help="rows a page (at most 100)")
    inbox.add_argument("--cursor", default="", help="the next page, from a previous listing")
    read = inbox.add_mutually_exclusive_group()
    read.add_argument(
        "--unread", "--unread-only", dest="unread_only", action="store_true", help="unread only"
    )
    read.add_argument("--read-only", action="store_true", help="read rows only")
    inbox.add_argument("--all", action="store_true", help="follow every page")
    inbox.add_argument("--ids", action="store_true", help="print only the store ids, one a line")
    filters.add_filter_flags(inbox, read_scope=False)
    inbox.set_defaults(run=cmd_inbox)

    counts = commands.add_parser(
        "counts",
        parents=[common],
        help="a user's unread, unseen and total counts (GetCounts)",
    )
    as_user(counts)
    filters.add_filter_flags(counts)
    counts.set_defaults(run=cmd_counts)

    mark = commands.add_parser(
        "mark",
        parents=[common],
        help="change the state of notifications (MarkNotifications)",
        description="Mark notifications read (the default), unread, seen, archived, "
        "snoozed or actioned: by store ids, or --all with the filter flags.",
    )
    as_user(mark)
    mark.add_argument("ids", nargs="*", metavar="ID", help="store ids, as inbox lists them")
    mark.add_argument("--all", action="store_true", help="every row the filter flags select")
    kind = mark.add_argument_group(
        "the change (one; default --read)"
    ).add_mutually_exclusive_group()
    kind.add_argument("--read", dest="mark", action="store_const", const="read")
    kind.add_argument("--unread", dest="mark", action="store_const", const="unread")
    kind.add_argument(
        "--seen", dest="mark", action="store_const", const="seen", help="the bell was opened"
    )
    kind.add_argument("--archive", dest="mark", action="store_const", const="archive")
    kind.add_argument("--unarchive", dest="mark", action="store_const", const="unarchive")
    kind.add_argument(
        "--snooze",
        metavar="UNTIL",
        type=values.later,
        help="hide until then: a duration from now (1h, 2d) or ISO 8601 / epoch seconds",
    )
    kind.add_argument("--unsnooze", dest="mark", action="store_const", const="unsnooze")
    kind.add_argument("--action", metavar="ACTION_ID", help="the user took this action")
    mark.set_defaults(mark="read")
    filters.add_filter_flags(mark)
    mark.set_defaults(run=cmd_mark)

    delete = commands.add_parser(
        "delete",
        parents=[common],
        help="delete notifications (DeleteNotifications)",
        description="Delete notifications: by store ids, or --all with the filter flags.",
    )
    as_user(delete)
    delete.add_argument("ids", nargs="*", metavar="ID", help="store ids, as inbox lists them")
    delete.add_argument("--all", action="store_true", help="every row the filter flags select")
    filters.add_filter_flags(delete)
    delete.set_defaults(run=cmd_delete)


def _counts_text(counts: pb.Counts) -> str:
    return f"{counts.unread} unread, {counts.unseen} unseen, {counts.total} total"


def cmd_inbox(args: argparse.Namespace) -> int:
    selected = filters.build_filter(args)
    if args.read_only:
        selected = selected or pb.NotificationFilter()
        selected.read = pb.READ_SCOPE_READ
    with user_client(args) as client:
        cursor = args.cursor
        pages: list[pb.GetNotificationsResponse] = []
        while True:
            page = client.get_notifications(
                cursor=cursor, limit=args.limit, unread_only=args.unread_only, filter=selected
            )
            pages.append(page)
            cursor = page.next_cursor
            if not (args.all and cursor):
                break
    last = pages[-1]
    rows = [n for page in pages for n in page.notifications]
    if args.ids:
        for row in rows:
            render.out.print(Text(row.id))
        return exits.OK
    if args.json:
        combined = pb.GetNotificationsResponse(
            notifications=rows,
            next_cursor=last.next_cursor,
            unread_count=last.unread_count,
            counts=last.counts,
        )
        body: dict[str, Any] = render.as_json(combined)
        body.setdefault("notifications", [])
        body.setdefault("unreadCount", 0)
        body["counts"] = render.as_json(last.counts, defaults=True)
        render.print_json(body)
        return exits.OK
    if rows:
        render.out.print(render.inbox_table(pb.GetNotificationsResponse(notifications=rows)))
    footer = f"{len(rows)} shown, {_counts_text(last.counts)}"
    if last.next_cursor:
        footer += f"; next page: --cursor {last.next_cursor}"
    render.note(footer)
    return exits.OK


def cmd_counts(args: argparse.Namespace) -> int:
    with user_client(args) as client:
        counts = client.get_counts(filters.build_filter(args))
    if args.json:
        render.print_json(render.as_json(counts, defaults=True))
    else:
        render.out.print(Text(_counts_text(counts)))
    return exits.OK


def _selection(args: argparse.Namespace) -> tuple[list[str], pb.NotificationFilter | None]:
    """Exactly one of ids or --all; the filter flags go with --all."""
    selected = filters.build_filter(args)
    if bool(args.ids) == args.all:
        raise UsageError(f"{args.command} takes store ids or --all, not both or neither")
    if args.ids and selected is not None:
        raise UsageError("the filter flags go with --all, not with ids")
    return list(dict.fromkeys(args.ids)), selected


def _missing(client: UserClient, ids: list[str]) -> NotifyError | None:
    """The first id that is not one of the user's rows, as the server's NotFound."""
    for store_id in ids:
        try:
            client.get_notification(store_id)
        except NotifyError as error:
            return error
    return None


def cmd_mark(args: argparse.Namespace) -> int:
    ids, selected = _selection(args)
    flag = "snooze" if args.snooze is not None else "action" if args.action else args.mark
    mark, word = _MARKS[flag]
    request = pb.MarkNotificationsRequest(
        ids=ids,
        all=args.all,
        filter=selected,
        mark=mark,
        snooze_until_ms=round(args.snooze(time.time()) * 1000) if args.snooze else 0,
        action_id=args.action or "",
    )
    with user_client(args) as client:
        result = client.mark_notifications(request)
        # Fewer changes than ids: some were already so, or are not the user's.
        missing = _missing(client, ids) if len(ids) > result.updated else None
    _print_change(args, f"marked {word}", ids, "updated", result.updated, result.counts)
    if missing is not None:
        raise missing
    return exits.OK


def cmd_delete(args: argparse.Namespace) -> int:
    ids, selected = _selection(args)
    request = pb.DeleteNotificationsRequest(ids=ids, all=args.all, filter=selected)
    with user_client(args) as client:
        result = client.delete_notifications(request)
    _print_change(args, "deleted", ids, "deleted", result.deleted, result.counts)
    if len(ids) > result.deleted:  # every existing row of the user is deleted
        return _not_found(args, len(ids) - result.deleted)
    return exits.OK


def _not_found(args: argparse.Namespace, count: int) -> int:
    render.error(
        f"{count} of the ids {'is' if count == 1 else 'are'} not the user's notifications",
        json_mode=args.json,
        code="not_found",
    )
    return exits.NOT_FOUND


def _print_change(
    args: argparse.Namespace,
    verb: str,
    ids: list[str],
    key: str,
    changed: int,
    counts: pb.Counts,
) -> None:
    if args.json:
        render.print_json({key: changed, "counts": render.as_json(counts, defaults=True)})
        return
    which = ", ".join(ids) if ids else "all"
    render.out.print(Text(f"{verb}: {which} ({changed} {key}; {_counts_text(counts)})"))
