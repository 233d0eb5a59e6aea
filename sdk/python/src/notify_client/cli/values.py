"""Parsers for notifyctl's flag values: durations, instants, actions, addresses."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from notify_client.payload import Action

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")


def duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``15m``, ``2h``, ``7d`` or ``250ms``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90s, 15m, 2h, 7d)")
    return float(match[1]) * _UNITS[match[2] or "s"]


def instant(text: str) -> float:
    """Epoch seconds from epoch seconds or ISO 8601 (``2030-01-01T09:00:00Z``; no zone = UTC)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (ISO 8601 or epoch seconds)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def later(text: str) -> Callable[[float], float]:
    """A moment from a duration (``1h``: from now) or an instant; applied to now when sent.

    A bare number is epoch seconds, as for ``instant``: a duration needs its unit.
    """
    match = _DURATION.match(text.strip())
    if match and match[2]:
        seconds = duration(text)
        return lambda now: now + seconds
    moment = instant(text)
    return lambda now: moment


def action(text: str) -> Action:
    """``id=open,label=Open,url=/tasks/42,primary``: ``id`` and ``label`` are required."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        fields[key.strip()] = value if sep else "true"
    unknown = set(fields) - {"id", "label", "url", "primary"}
    if unknown or "id" not in fields or "label" not in fields:
        raise argparse.ArgumentTypeError(
            f"not an action: {text!r} (id=ID,label=LABEL[,url=URL][,primary])"
        )
    return Action(
        id=fields["id"],
        label=fields["label"],
        url=fields.get("url", ""),
        primary=fields.get("primary", "false").lower() in {"true", "1", "yes"},
    )


def address(text: str) -> tuple[str, str, str]:
    """``USER:CHANNEL=ADDRESS``, e.g. ``user-alice:email=alice@example.com``."""
    user, _, rest = text.partition(":")
    channel, sep, value = rest.partition("=")
    if not (user and channel and sep and value):
        raise argparse.ArgumentTypeError(f"not an address: {text!r} (USER:CHANNEL=ADDRESS)")
    return user, channel, value


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--data must be a JSON object")
    return value
