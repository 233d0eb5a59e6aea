"""Server-Sent Events: ``GET /v1/events``, the live stream for a plain ``EventSource``.

A transport over the same live stream as StreamEvents (``notify.service.live``):
the same handshake, badge, replay, dedupe, limits and close reasons. Each
event is written as

    id: <resume token>          (notification and update events only)
    event: <the StreamEvent oneof name: heartbeat, counts, notification, ...>
    data: <the StreamEvent as the API's Connect JSON>

The handshake heartbeat (it carries the ``sessionId``) is an event; later
heartbeats are comment lines, which keep proxies from timing the connection
out without waking the page. The stream opens with a ``retry:`` field (the
browser's reconnect delay) and ends with an ``end`` event whose data is
Connect's end-of-stream JSON (``{}``, or ``{"error": {code, message}}``), after
which ``EventSource`` reconnects by itself with ``Last-Event-ID``.

A browser reconnects forever to a stream that once answered 200, so anything
that can fail before the first live event (credentials, parameters, limits,
the replay of a resume) is answered with an HTTP status and a Connect-style
JSON error instead, which makes ``EventSource`` give up and report an error:
the response head is held until the replay is out. ``out_of_range`` (the
resume is too far behind) is 409: the client pages its inbox and opens a new
``EventSource`` without a resume position.

Parameters (query string): ``access_token`` (only where the Authorization
header cannot be set: query strings end up in proxy logs, so use short-lived
tokens), ``device_type`` (``browser``, ``DEVICE_TYPE_BROWSER`` or its number)
and ``resume_token``. A ``Last-Event-ID`` header wins over ``resume_token``: the
browser repeats the original URL on every reconnect, with the newest id.
"""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.parse
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from elloloop.notify.v1 import notify_pb2 as pb

from notify.api.client import stream_event
from notify.api.context import current_request
from notify.api.directframes import SseFrameSink, sse_frame
from notify.api.errors import retry_after_header, to_connect_error
from notify.api.wire_errors import HTTP_STATUS
from notify.auth import Principal
from notify.core.errors import InvalidArgument, Unauthenticated
from notify.core.ratelimit import RateLimiter
from notify.realtime.hub import Heartbeat
from notify.service.live import CaughtUp, LiveStream, LiveStreams, StreamItem
from notify.wire import fastjson
from notify.wire.streamevents import StreamEventWriter

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
AuthenticateAsync = Callable[[str | None], Awaitable[Principal]]

EVENTS_PATH = "/v1/events"

# The reconnect delay a browser is told to use (ms); Chromium's own is 3 s.
DEFAULT_RETRY_MS = 1000

# OUT_OF_RANGE is 400 in Connect's table, which reads like a malformed
# request; 409 says "your position conflicts with what the server keeps".
_STATUS = {**HTTP_STATUS, Code.OUT_OF_RANGE: 409}

_PARAMETERS = ("access_token", "device_type", "resume_token")
_MAX_QUERY_FIELDS = 16

_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    # Never cached: the URL may hold a token, and every response is live.
    (b"cache-control", b"no-store"),
    # nginx would otherwise buffer the stream and deliver it in bursts.
    (b"x-accel-buffering", b"no"),
]


@dataclass(frozen=True, slots=True)
class EventsRequest:
    """What a ``GET /v1/events`` asks for, before any of it is verified."""

    authorization: str | None
    device_type: int
    resume_token: str


def parse_request(headers: list[tuple[bytes, bytes]], query_string: bytes) -> EventsRequest:
    """The request's credentials and StreamEvents fields; InvalidArgument if ambiguous."""
    try:
        fields = urllib.parse.parse_qsl(
            query_string.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=_MAX_QUERY_FIELDS,
            errors="strict",  # a percent-encoded value must be UTF-8 too
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidArgument(
            f"the query string is malformed or has more than {_MAX_QUERY_FIELDS} parameters"
        ) from None
    query: dict[str, str] = {}
    for name, value in fields:
        if name not in _PARAMETERS:
            continue  # unknown parameters are ignored, as unknown JSON fields are
        if name in query:
            raise InvalidArgument(f"{name} is given more than once")
        query[name] = value
    authorization: str | None = None
    last_event_id = ""
    for header, raw in headers:
        if header == b"authorization":
            authorization = raw.decode("latin-1")
        elif header == b"last-event-id":
            last_event_id = raw.decode("latin-1").strip()
    if "access_token" in query:
        if authorization is not None:
            raise InvalidArgument(
                "send the token in the Authorization header or in access_token, not both"
            )
        token = query["access_token"].strip()
        authorization = f"Bearer {token}" if token else None
    return EventsRequest(
        authorization=authorization,
        device_type=_device_type(query.get("device_type", "")),
        resume_token=last_event_id or query.get("resume_token", ""),
    )


def _device_type(text: str) -> int:
    """``browser``, ``DEVICE_TYPE_BROWSER`` or a number; the number is checked later."""
    text = text.strip()
    if not text:
        return 0
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("DEVICE_TYPE_"):
        name = "DEVICE_TYPE_" + name
    try:
        return int(pb.DeviceType.Value(name))
    except ValueError:
        raise InvalidArgument(f"device_type {text[:40]!r} is not a device type") from None


def event_bytes(session_id: str, item: StreamItem) -> bytes:
    """One stream item as an SSE event: the oneof name, the resume token, the JSON."""
    message = stream_event(session_id, item)
    kind = message.WhichOneof("event")
    head = f"event: {kind}\n"
    token = getattr(getattr(message, kind), "resume_token", "")
    if token:
        head = f"id: {token}\n" + head
    return head.encode() + _data_lines(fastjson.to_json(message))


def heartbeat_comment(heartbeat: Heartbeat) -> bytes:
    return f": heartbeat {heartbeat.timestamp_ms}\n\n".encode()


def end_bytes(error: ConnectError | None) -> bytes:
    """The last event: Connect's end-of-stream JSON, so a client can tell why it ended."""
    end: dict[str, Any] = {} if error is None else {"error": _error_dict(error)}
    return b"event: end\n" + _data_lines(json.dumps(end).encode())


def _data_lines(payload: bytes) -> bytes:
    # Compact JSON has no raw line breaks; should one appear, each line is its own field.
    lines = payload.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"


def _error_dict(error: ConnectError) -> dict[str, Any]:
    """A Connect error as its JSON body (details as {type, value}, base64 unpadded)."""
    body: dict[str, Any] = {"code": error.code.value, "message": error.message}
    if error.details:
        body["details"] = [
            {
                "type": detail.type_url.removeprefix("type.googleapis.com/"),
                "value": base64.b64encode(detail.value).decode("ascii").rstrip("="),
            }
            for detail in error.details
        ]
    return body


class EventStreamApp:
    """Serves ``GET /v1/events``; every other path goes to ``app`` (the Connect app)."""

    def __init__(
        self,
        app: ASGIApp,
        live: LiveStreams,
        authenticate: AuthenticateAsync,
        limiter: RateLimiter | None = None,
        *,
        retry_ms: int = DEFAULT_RETRY_MS,
        frames: StreamEventWriter | None = None,
    ) -> None:
        self._app = app
        self._live = live
        # The Connect streams' frame writer (ClientService.frames): rows' bytes
        # kept once for both transports, and the direct path over HTTP/1.1.
        self._frames = frames
        self._authenticate = authenticate
        self._limiter = limiter if limiter is not None and limiter.rate.enabled else None
        self._retry = f"retry: {retry_ms}\n\n".encode()

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine itself: every other path gets the app's own awaitable,
        # so an RPC holds no frame of this router for its whole life.
        if scope["type"] != "http" or scope["path"] != EVENTS_PATH:
            return self._app(scope, receive, send)
        return self._events(scope, receive, send)

    async def _events(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "GET":
            error = ConnectError(Code.UNIMPLEMENTED, f"{EVENTS_PATH} answers GET only")
            await _send_error(send, error, status=405, extra=[(b"allow", b"GET")])
            return
        try:
            stream = await self._open(scope)
        except Exception as exc:
            await _send_error(send, to_connect_error(exc), retry_after=retry_after_header(exc))
            return
        await self._serve_until_gone(stream, receive, send)

    async def _serve_until_gone(self, stream: LiveStream, receive: Receive, send: Send) -> None:
        """Serves the stream; the moment the client goes away, the session ends and so do we.

        Hanging up cancels whatever the response is waiting on: over HTTP/2,
        hypercorn never completes a write (or the end of a body) for a
        connection that has closed, so a response must not write after that.
        """
        task = asyncio.current_task()
        assert task is not None
        serving = True
        watcher = asyncio.create_task(_until_disconnect(receive))

        def hang_up(done: asyncio.Task[None]) -> None:
            stream.close()
            if done.cancelled():
                return  # we are done: the watcher was stopped
            done.exception()  # a request side that failed (a body cut off) is a hang-up too
            if serving:
                task.cancel()

        watcher.add_done_callback(hang_up)
        try:
            await self._serve(stream, send)
        except asyncio.CancelledError:
            if not watcher.done() or watcher.cancelled():
                raise  # not the hang-up: the server is cancelling this request
            task.uncancel()
        finally:
            serving = False
            watcher.cancel()
            stream.close()

    async def _open(self, scope: Scope) -> LiveStream:
        request = parse_request(scope["headers"], scope.get("query_string", b""))
        if request.authorization is None:
            raise Unauthenticated(
                "missing credentials: an Authorization header (Bearer token) or access_token"
            )
        principal = await self._authenticate(request.authorization)
        info = current_request.get()
        if info is not None:
            info.tenant_id = principal.tenant_id
            info.user_id = principal.user_id
        if self._limiter is not None:
            self._limiter.take((principal.tenant_id, principal.user_id))
        return self._live.open(principal, request.device_type, request.resume_token)

    async def _serve(self, stream: LiveStream, send: Send) -> None:
        session_id = stream.session_id
        frames = self._frames
        info = current_request.get()
        if frames is not None and info is not None and info.body_writer is not None:
            stream.attach(SseFrameSink(info.body_writer, frames, session_id))
        # Until CAUGHT_UP the answer may still be an error status: hold the head.
        prelude = [self._retry]
        started = False
        error: ConnectError | None = None
        try:
            async with aclosing(stream.items()) as items:
                async for item in items:
                    if isinstance(item, CaughtUp):
                        await send(
                            {
                                "type": "http.response.start",
                                "status": 200,
                                "headers": list(_STREAM_HEADERS),
                            }
                        )
                        started = True
                        chunk = b"".join(prelude)
                    elif not started:
                        prelude.append(event_bytes(session_id, item))
                        continue
                    elif isinstance(item, Heartbeat):
                        chunk = heartbeat_comment(item)
                    else:
                        kept = None if frames is None else sse_frame(frames, session_id, item)
                        chunk = kept if kept is not None else event_bytes(session_id, item)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except Exception as exc:
            if not started:
                await _send_error(send, to_connect_error(exc), retry_after=retry_after_header(exc))
                return
            error = to_connect_error(exc)
        if not started:
            return  # the client went away before the stream caught up: nobody to answer
        await send({"type": "http.response.body", "body": end_bytes(error), "more_body": False})


async def _until_disconnect(receive: Receive) -> None:
    """Reads the request side until the client goes away (``http.disconnect``)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_error(
    send: Send,
    error: ConnectError,
    *,
    status: int | None = None,
    retry_after: str | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    body = json.dumps(_error_dict(error)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    await send(
        {"type": "http.response.start", "status": status or _STATUS[error.code], "headers": headers}
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
