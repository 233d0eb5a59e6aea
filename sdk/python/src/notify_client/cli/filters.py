"""The flags that pick rows (a NotificationFilter), shared by inbox, counts, mark and delete.

Every list flag is repeatable and means "any of", as in the contract; no flag
at all means the inbox (in-app, visible, not archived), so ``None`` is
returned and the server's default applies.
"""

from __future__ import annotations

import argparse

from notify_client.proto import pb

# Channel and severity names as a person types them ("in_app"), from the contract's enums.
CHANNELS: dict[str, pb.DeliveryChannel] = {
    v.name.removeprefix("DELIVERY_CHANNEL_").lower(): getattr(pb, v.name)
    for v in pb.DeliveryChannel.DESCRIPTOR.values
    if v.number
}
SEVERITIES: dict[str, pb.Severity] = {
    v.name.removeprefix("SEVERITY_").lower(): getattr(pb, v.name)
    for v in pb.Severity.DESCRIPTOR.values
    if v.number
}


def add_filter_flags(parser: argparse.ArgumentParser, *, read_scope: bool = True) -> None:
    group = parser.add_argument_group("which rows (NotificationFilter; default: the inbox)")
    group.add_argument("--category", action="append", default=[], help="repeatable: any of")
    group.add_argument("--tag", action="append", default=[], help="repeatable: any of")
    group.add_argument(
        "--severity", action="append", default=[], choices=list(SEVERITIES), help="repeatable"
    )
    group.add_argument(
        "--channel",
        action="append",
        default=[],
        choices=list(CHANNELS),
        help="repeatable; default in_app only (the inbox)",
    )
    archived = group.add_mutually_exclusive_group()
    archived.add_argument("--archived", action="store_true", help="archived rows only")
    archived.add_argument(
        "--with-archived", action="store_true", help="archived and not archived rows"
    )
    if read_scope:
        read = group.add_mutually_exclusive_group()
        read.add_argument("--unread-only", action="store_true", help="unread rows only")
        read.add_argument("--read-only", action="store_true", help="read rows only")
    group.add_argument(
        "--snoozed", action="store_true", help="the snoozed rows instead of the visible ones"
    )


def build_filter(args: argparse.Namespace) -> pb.NotificationFilter | None:
    """The filter the flags describe, or None when none was given (the inbox)."""
    archived = (
        pb.ARCHIVE_SCOPE_ARCHIVED
        if args.archived
        else pb.ARCHIVE_SCOPE_ALL
        if args.with_archived
        else pb.ARCHIVE_SCOPE_UNSPECIFIED
    )
    unread_only = getattr(args, "unread_only", False)
    read_only = getattr(args, "read_only", False)
    read = (
        pb.READ_SCOPE_UNREAD
        if unread_only
        else pb.READ_SCOPE_READ
        if read_only
        else pb.READ_SCOPE_UNSPECIFIED
    )
    found = pb.NotificationFilter(
        categories=args.category,
        tags=args.tag,
        severities=[SEVERITIES[s] for s in args.severity],
        archived=archived,
        read=read,
        channels=[CHANNELS[c] for c in args.channel],
        snoozed=args.snoozed,
    )
    return found if found.ListFields() else None
