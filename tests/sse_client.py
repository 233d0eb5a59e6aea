"""A small Server-Sent Events reader over httpx, for the tests of ``GET /v1/events``.

It parses the stream the way the WHATWG EventSource parser does (fields up
to a blank line; ``:`` starts a comment), but keeps what a browser hides
(comments, ``retry:``) so tests can assert on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

EVENTS_PATH = "/v1/events"
SYNC_KINDS = ("counts", "update")


@dataclass
class SSEvent:
    event: str = ""  # "" for a block without an event field (retry:, comments)
    data: Any = None  # the JSON of the data field(s)
    id: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)


class StreamClosed(Exception):
    """The server ended the response."""


class EventStream:
    """One ``GET /v1/events``: ``status`` and ``error`` before the stream, blocks after."""

    def __init__(
        self,
        client: httpx.Client,
        base: str,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        *,
        owns_client: bool = False,
    ) -> None:
        # httpx ends an HTTP/2 response without resetting its stream, so a test
        # that must hang up on the server closes the connection: its own client.
        self._client = client if owns_client else None
        self._cm = client.stream("GET", base + EVENTS_PATH, headers=headers, params=params)
        self.response = self._cm.__enter__()
        self.status = self.response.status_code
        self.error: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        if self.status != 200:
            self.error = dict(json.loads(self.response.read()))
        self._lines: Iterator[str] = self.response.iter_lines()

    def block(self) -> SSEvent:
        """The next block up to a blank line; StreamClosed at the end of the body."""
        event = SSEvent()
        data: list[str] = []
        seen = False
        for line in self._lines:
            if line == "":
                if not seen:
                    continue
                if data:
                    event.data = json.loads("\n".join(data))
                if event.event == "end":
                    self.end = event.data
                return event
            seen = True
            if line.startswith(":"):
                event.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event.event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event.id = value
            elif name == "retry":
                event.retry = int(value)
        raise StreamClosed(self.end)

    def next(self, skip: tuple[str, ...] = SYNC_KINDS) -> SSEvent:
        """The next named event, past comments, ``retry:`` and the kinds in ``skip``."""
        while True:
            event = self.block()
            if event.event and event.event not in skip:
                return event

    def next_of(self, kind: str) -> SSEvent:
        """The next event of that kind; anything else on the way must be routine."""
        while True:
            event = self.block()
            if event.event == kind:
                return event
            assert event.event in ("", "heartbeat", *SYNC_KINDS), event

    def until_end(self) -> dict[str, Any]:
        """Reads to the ``end`` event and the end of the body; returns the end's data."""
        while True:
            event = self.block()
            if event.event == "end":
                with_rest = list(self._lines)
                assert with_rest in ([], [""]), with_rest
                return dict(event.data)

    def close(self) -> None:
        self._cm.__exit__(None, None, None)
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
