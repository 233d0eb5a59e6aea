"""``notifyctl prefs``: a user's delivery preferences, and a tenant's defaults.

``get`` and ``set`` act as the user on the client port (GetPreferences,
UpdatePreferences). ``set-tenant`` is a producer's call on the internal port
(SetTenantPreferences, with the internal token): it replaces the tenant's
default rules and its required categories, which users cannot opt out of.

A rule is ``CATEGORY[/CHANNEL]=on|off``; ``*`` is every category (``/`` can
never be part of a category), and no channel is every channel:
``marketing=off``, ``*/email=off``, ``billing/email=on``.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table
from rich.text import Text

from notify_client.cli import exits, filters, render
from notify_client.cli.common import UsageError, as_producer, as_user, user_client
from notify_client.client import NotifyClient
from notify_client.proto import pb
from notify_client.retry import RetryPolicy

_SWITCH = {"on": True, "true": True, "off": False, "false": False}


def rule(text: str) -> pb.PreferenceRule:
    """``CATEGORY[/CHANNEL]=on|off`` as a PreferenceRule (argparse type)."""
    target, sep, switch = text.rpartition("=")
    category, _, channel = target.partition("/")
    if not sep or not category or switch.lower() not in _SWITCH:
        raise argparse.ArgumentTypeError(
            f"not a rule: {text!r} (CATEGORY[/CHANNEL]=on|off, * for every category)"
        )
    if channel and channel not in filters.CHANNELS:
        raise argparse.ArgumentTypeError(
            f"unknown channel {channel!r}: one of {', '.join(filters.CHANNELS)}"
        )
    return pb.PreferenceRule(
        category="" if category == "*" else category,
        channel=filters.CHANNELS.get(channel, pb.DELIVERY_CHANNEL_UNSPECIFIED),
        enabled=_SWITCH[switch.lower()],
    )


def add_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    prefs = commands.add_parser(
        "prefs",
        help="delivery preferences (GetPreferences, UpdatePreferences, SetTenantPreferences)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = prefs.add_subparsers(dest="prefs_command", required=True, metavar="ACTION")

    get = actions.add_parser("get", parents=[common], help="the user's rules and the tenant's")
    as_user(get)
    get.set_defaults(run=cmd_get)

    set_ = actions.add_parser("set", parents=[common], help="change the user's rules")
    as_user(set_)
    set_.add_argument(
        "rules", nargs="*", type=rule, metavar="RULE", help="CATEGORY[/CHANNEL]=on|off"
    )
    set_.add_argument(
        "--replace", action="store_true", help="the rules replace all of the user's (none: clear)"
    )
    set_.set_defaults(run=cmd_set)

    tenant = actions.add_parser(
        "set-tenant",
        parents=[common],
        help="replace a tenant's default rules and required categories (internal port)",
    )
    as_producer(tenant)
    tenant.add_argument("--tenant", required=True, help="the tenant id")
    tenant.add_argument(
        "rules",
        nargs="*",
        type=rule,
        metavar="RULE",
        help="default rules, CATEGORY[/CHANNEL]=on|off",
    )
    tenant.add_argument(
        "--required",
        action="append",
        default=[],
        metavar="CATEGORY",
        help="a category users cannot turn off (repeatable)",
    )
    tenant.add_argument("--deadline", type=float, default=5.0, help="seconds, with retries")
    tenant.set_defaults(run=cmd_set_tenant)


def _rule_text(r: pb.PreferenceRule) -> str:
    category = r.category or "*"
    channel = (
        "/" + pb.DeliveryChannel.Name(r.channel).removeprefix("DELIVERY_CHANNEL_").lower()
        if r.channel
        else ""
    )
    return f"{category}{channel}={'on' if r.enabled else 'off'}"


def _print(args: argparse.Namespace, prefs: pb.Preferences) -> None:
    if args.json:
        render.print_json(render.as_json(prefs, defaults=True))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("WHOSE", no_wrap=True)
    table.add_column("RULE", overflow="fold")
    for whose, rules in (("user", prefs.rules), ("tenant", prefs.tenant_defaults)):
        for r in rules:
            table.add_row(whose, Text(_rule_text(r)))
    for category in prefs.required_categories:
        table.add_row("required", Text(category))
    if table.row_count:
        render.out.print(table)
    else:
        render.note("no rules: every category is delivered on every channel")


def cmd_get(args: argparse.Namespace) -> int:
    with user_client(args) as client:
        _print(args, client.get_preferences())
    return exits.OK


def cmd_set(args: argparse.Namespace) -> int:
    if not args.rules and not args.replace:
        raise UsageError("prefs set takes rules (or --replace alone to clear the user's)")
    with user_client(args) as client:
        _print(args, client.update_preferences(args.rules, replace=args.replace))
    return exits.OK


def cmd_set_tenant(args: argparse.Namespace) -> int:
    policy = RetryPolicy(deadline=args.deadline)
    with NotifyClient(args.internal_url, token=args.internal_token, retry=policy) as client:
        client.set_tenant_preferences(
            args.tenant, defaults=args.rules, required_categories=args.required
        )
    if args.json:
        render.print_json(
            {
                "tenantId": args.tenant,
                "defaults": [render.as_json(r, defaults=True) for r in args.rules],
                "requiredCategories": args.required,
            }
        )
    else:
        rules = " ".join(_rule_text(r) for r in args.rules) or "none"
        required = ", ".join(args.required) or "none"
        render.out.print(Text(f"tenant {args.tenant}: defaults {rules}; required {required}"))
    return exits.OK
