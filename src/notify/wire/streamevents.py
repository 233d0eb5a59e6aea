"""StreamEvents frames spliced from bytes encoded once per fan-out.

One Notify for a user with 1,000 open streams hands the same pushed row to
1,000 sessions. Built through protobuf, every session made its own
``Notification`` message (a Struct for ``data``, a message per action) and
its own JSON or binary encoding of it. Here the row's bytes come from
``RowBytes`` (encoded by the first session, reused by the rest), and only
what differs per session is written per frame: its ``session_id`` and the
resume token, spliced around the shared bytes. The counts that follow a
Notify are the same object for every session too, and are encoded once.

The frames are the bytes the codecs write for the equivalent message:
binary is exactly ``SerializeToString(deterministic=True)`` (fields in number order, empty
strings left out as proto3 does), JSON is the same value ``fastjson``
writes, keys in the same order (tests/unit/test_streamevents.py holds them
to it). The handler yields the placeholder ``pb.StreamEvent`` this returns;
the stream's codec asks ``prepared`` for its own bytes.
"""

from __future__ import annotations

import orjson
from elloloop.notify.v1 import notify_pb2 as pb

from notify.core.model import Counts, Notification
from notify.wire import prepared
from notify.wire.convert import counts_to_pb
from notify.wire.pbrows import varint
from notify.wire.rowbytes import RowBytes

_EVENT = pb.StreamEvent.DESCRIPTOR.fields_by_name
_PUSHED = pb.NotificationEvent.DESCRIPTOR.fields_by_name
_BADGE = pb.CountsEvent.DESCRIPTOR.fields_by_name


def _key(field: object) -> bytes:
    """A length-delimited field's key: number << 3 | 2."""
    return varint(field.number << 3 | 2)  # type: ignore[attr-defined]


def _name(field: object) -> bytes:
    """A field's JSON name, quoted."""
    return orjson.dumps(field.json_name)  # type: ignore[attr-defined]


_SESSION_KEY = _key(_EVENT["session_id"])
_NOTIFICATION_KEY = _key(_EVENT["notification"])
_COUNTS_KEY = _key(_EVENT["counts"])
_ROW_KEY = _key(_PUSHED["notification"])
_TOKEN_KEY = _key(_PUSHED["resume_token"])
_BADGE_KEY = _key(_BADGE["counts"])

_JSON_SESSION = b"{" + _name(_EVENT["session_id"]) + b":"
_JSON_ROW = b"," + _name(_EVENT["notification"]) + b":{" + _name(_PUSHED["notification"]) + b":"
_JSON_TOKEN = b"," + _name(_PUSHED["resume_token"]) + b":"
_JSON_COUNTS = b"," + _name(_EVENT["counts"]) + b":{" + _name(_BADGE["counts"]) + b":"


def _string_field(key: bytes, text: str) -> bytes:
    """A proto3 string field: nothing when empty."""
    if not text:
        return b""
    data = text.encode()
    return key + varint(len(data)) + data


def _message_field(key: bytes, data: bytes) -> bytes:
    """A set message field: present even when its bytes are empty."""
    return key + varint(len(data)) + data


class StreamEventWriter:
    """Per server: the frames of its streams, from its ``RowBytes``."""

    def __init__(self, json_rows: RowBytes, proto_rows: RowBytes) -> None:
        self._json_rows = json_rows
        self._proto_rows = proto_rows
        # The last counts written: a fan-out writes the same ones to every
        # session, one after another.
        self._counts_of: Counts | None = None
        self._counts_json = b""
        self._counts_proto = b""

    def notification(self, session_id: str, row: Notification, token: str) -> pb.StreamEvent:
        """A ``notification`` event for one session, written by the stream's codec.

        ``token`` is the resume token the live stream made for this row (one
        encoding per fan-out: ``notify.service.live``)."""
        return prepared.prepare(
            pb.StreamEvent(session_id=session_id),
            {
                "json": lambda: self.notification_json(session_id, row, token),
                "proto": lambda: self.notification_proto(session_id, row, token),
            },
        )

    def notification_json(self, session_id: str, row: Notification, token: str) -> bytes:
        return b"".join(
            (
                _JSON_SESSION,
                orjson.dumps(session_id),
                _JSON_ROW,
                self._json_rows(row),
                _JSON_TOKEN,
                orjson.dumps(token),
                b"}}",
            )
        )

    def notification_proto(self, session_id: str, row: Notification, token: str) -> bytes:
        pushed = _message_field(_ROW_KEY, self._proto_rows(row)) + _string_field(_TOKEN_KEY, token)
        return _string_field(_SESSION_KEY, session_id) + _message_field(_NOTIFICATION_KEY, pushed)

    def _counts(self, counts: Counts) -> None:
        if counts is not self._counts_of:
            self._counts_of = counts
            self._counts_json = orjson.dumps(
                {"unread": counts.unread, "unseen": counts.unseen, "total": counts.total}
            )
            self._counts_proto = _message_field(
                _BADGE_KEY, counts_to_pb(counts).SerializeToString()
            )

    def counts(self, session_id: str, counts: Counts) -> pb.StreamEvent:
        """A ``counts`` event for one session: the badge is encoded once for all of them."""
        return prepared.prepare(
            pb.StreamEvent(session_id=session_id),
            {
                "json": lambda: self.counts_json(session_id, counts),
                "proto": lambda: self.counts_proto(session_id, counts),
            },
        )

    def counts_json(self, session_id: str, counts: Counts) -> bytes:
        self._counts(counts)
        return b"".join(
            (_JSON_SESSION, orjson.dumps(session_id), _JSON_COUNTS, self._counts_json, b"}}")
        )

    def counts_proto(self, session_id: str, counts: Counts) -> bytes:
        self._counts(counts)
        return _string_field(_SESSION_KEY, session_id) + _message_field(
            _COUNTS_KEY, self._counts_proto
        )
