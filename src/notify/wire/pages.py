"""GetNotifications answers written from the rows, in whichever codec the call uses.

``PageWriter`` keeps each row's JSON and binary encodings (``RowBytes``) and
registers both page writers for the placeholder answer (``prepared``), so the
codec the call negotiated writes the page from kept bytes: a page of rows
already served costs a lookup per row in either codec, rich or plain.
"""

from __future__ import annotations

from collections.abc import Sequence

from elloloop.notify.v1 import notify_pb2 as pb

from notify.core.model import Counts, Notification
from notify.wire import jsonrows, pbrows, prepared
from notify.wire.convert import counts_to_pb
from notify.wire.rowbytes import RowBytes


class PageWriter:
    """One per server: its caches hold rows of that server's store only."""

    def __init__(self) -> None:
        self.json_rows = RowBytes(jsonrows.row_bytes)
        self.proto_rows = RowBytes(pbrows.row_bytes)

    def answer(
        self, rows: Sequence[Notification], next_cursor: str, counts: Counts
    ) -> pb.GetNotificationsResponse:
        """The placeholder answer; the codec writes the real one from ``rows``."""
        answer = pb.GetNotificationsResponse(
            next_cursor=next_cursor, unread_count=counts.unread, counts=counts_to_pb(counts)
        )
        return prepared.prepare(
            answer,
            {
                "json": lambda: jsonrows.page_from_rows(
                    self.json_rows.many(rows), next_cursor, counts
                ),
                "proto": lambda: pbrows.page_from_rows(
                    self.proto_rows.many(rows), next_cursor, counts
                ),
            },
        )
