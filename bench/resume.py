"""Reconnect with a resume_token after missing notifications: how long is the replay?

One round, for a user of its own:
1. a live stream (Connect JSON over HTTP/1.1, as a browser has) gets one
   notification and keeps its ``resumeToken``; the stream is closed, and the
   bench waits until notifyd has noticed (``notify_streams_open`` is 0);
2. ``missed`` notifications are sent to the now offline user, one after the
   other (so their order is known), each answered ``pending: 1``;
3. the clock starts, a new stream opens with ``{"resumeToken": ...}``, and it
   stops when the last replayed notification has been read and decoded;
   every notificationId is checked against the order they were sent in;
4. one more Notify must then arrive live on the same stream, exactly once:
   resume continues with no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import uvloop

from bench import h1
from bench.server import Notifyd, cpu_meter, metric_sum
from bench.streams import STREAM_PATH, TENANT
from bench.wrk import NOTIFY_PATH

READ_TIMEOUT = 10.0
STORE_HISTOGRAM = "notify_store_operation_duration_seconds"
STORE_OPERATIONS = ("list_after", "mark_delivered")


@dataclass(slots=True)
class ResumeResult:
    missed: int
    total_ms: list[float] = field(default_factory=list)  # open -> last replayed frame decoded
    handshake_ms: list[float] = field(default_factory=list)  # open -> handshake decoded
    first_ms: list[float] = field(default_factory=list)  # open -> first replayed frame
    client_cpu_ms: list[float] = field(default_factory=list)  # this process, open -> last
    server_cpu_ms: list[float] = field(default_factory=list)  # notifyd, open -> last
    # The store calls of the replay (notifyd's own histogram): list_after, mark_delivered.
    store_ms: dict[str, list[float]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # anything not exactly as specified
    rounds_ok: int = 0


async def _notify(sender: h1.Connection, user: str, notification_id: str) -> dict[str, Any]:
    payload = {
        "tenantId": TENANT,
        "notificationId": notification_id,
        "userIds": [user],
        "channels": ["DELIVERY_CHANNEL_IN_APP"],
        "title": "Build finished",
        "body": "Your build finished; open it to see the test report.",
    }
    response = await sender.post_json(NOTIFY_PATH, payload, {})
    if response.status != 200:
        raise RuntimeError(f"Notify answered HTTP {response.status}: {response.body[:200]!r}")
    answer: dict[str, Any] = response.json()
    return answer


async def _next_event(stream: h1.ConnectStream) -> dict[str, Any]:
    envelope = await asyncio.wait_for(stream.next(), READ_TIMEOUT)
    if envelope is None or envelope[0] & h1.CONNECT_END_STREAM:
        raise RuntimeError(f"the stream ended: {envelope}")
    event: dict[str, Any] = envelope[1]
    return event


async def _next_notification(stream: h1.ConnectStream) -> dict[str, Any]:
    """The next NotificationEvent, skipping heartbeats."""
    while True:
        event = await _next_event(stream)
        if "notification" in event:
            notification: dict[str, Any] = event["notification"]
            return notification


async def _wait_closed(server: Notifyd) -> None:
    deadline = time.monotonic() + 5
    while await asyncio.to_thread(server.metric_sum, "notify_streams_open") > 0:
        if time.monotonic() > deadline:
            raise RuntimeError("notifyd still counts the closed stream as open after 5 s")
        await asyncio.sleep(0.02)


async def _round(
    server: Notifyd, sender: h1.Connection, tag: str, missed: int, result: ResumeResult
) -> None:
    user = f"resume-user-{tag}"
    headers = {"Authorization": f"Bearer dev:{user}:{TENANT}"}
    problems: list[str] = []

    # 1. Seen live; keep its token.
    stream = h1.ConnectStream("127.0.0.1", server.ports.client)
    try:
        await stream.open(STREAM_PATH, {}, headers)
        await _next_event(stream)  # the handshake
        answer = await _notify(sender, user, f"{tag}-seen")
        seen = await _next_notification(stream)
    finally:
        await stream.close()
    if answer.get("delivered") != 1:
        problems.append(f"the live notification was not delivered: {answer}")
    token = seen["resumeToken"]
    await _wait_closed(server)

    # 2. Missed while offline.
    expected = [f"{tag}-missed-{number}" for number in range(missed)]
    not_pending = 0
    for notification_id in expected:
        answer = await _notify(sender, user, notification_id)
        not_pending += answer.get("pending") != 1
    if not_pending:
        problems.append(f"{not_pending} missed notifications were not answered pending=1")

    # 3. Reconnect with the token, read the replay.
    stream = h1.ConnectStream("127.0.0.1", server.ports.client)
    metrics_before = await asyncio.to_thread(server.metrics_text)
    try:
        with cpu_meter(server.pid) as server_cpu:
            cpu_started = time.process_time()
            started = time.perf_counter()
            await stream.open(STREAM_PATH, {"resumeToken": token}, headers)
            handshake = await _next_event(stream)
            handshake_at = time.perf_counter()
            if "heartbeat" not in handshake:
                problems.append(f"the first event is not the handshake: {handshake}")
            replayed: list[str] = []
            first_at = 0.0
            while len(replayed) < missed:
                event = await _next_notification(stream)
                if not replayed:
                    first_at = time.perf_counter()
                replayed.append(event["notification"]["notificationId"])
            finished = time.perf_counter()
            client_cpu = time.process_time() - cpu_started
        metrics_after = await asyncio.to_thread(server.metrics_text)

        # 4. Live again, exactly once.
        live_id = f"{tag}-live"
        answer = await _notify(sender, user, live_id)
        after = await _next_notification(stream)
    finally:
        await stream.close()
    if replayed != expected:
        wrong = next(i for i, (a, b) in enumerate(zip(replayed, expected, strict=True)) if a != b)
        problems.append(f"replay out of order or wrong at #{wrong}: {replayed[wrong]!r}")
    after_id = after["notification"]["notificationId"]
    if after_id != live_id or answer.get("delivered") != 1:
        problems.append(f"after the replay, the next frame was {after_id!r}, not {live_id!r}")
    result.total_ms.append((finished - started) * 1000)
    result.handshake_ms.append((handshake_at - started) * 1000)
    result.first_ms.append((first_at - started) * 1000)
    result.client_cpu_ms.append(client_cpu * 1000)
    result.server_cpu_ms.append(server_cpu.seconds * 1000)
    for operation in STORE_OPERATIONS:
        spent = [
            metric_sum(text, f"{STORE_HISTOGRAM}_sum", operation=operation)
            for text in (metrics_before, metrics_after)
        ]
        result.store_ms.setdefault(operation, []).append((spent[1] - spent[0]) * 1000)
    result.problems += [f"round {tag}: {problem}" for problem in problems]
    result.rounds_ok += not problems


async def _measure(server: Notifyd, missed: int, rounds: int, tag: str) -> ResumeResult:
    result = ResumeResult(missed)
    sender = await h1.Connection("127.0.0.1", server.ports.internal).connect()
    try:
        warm = ResumeResult(missed)
        await _round(server, sender, f"{tag}-warm", min(missed, 50), warm)  # first-use costs
        result.problems += warm.problems
        for number in range(rounds):
            await _round(server, sender, f"{tag}-{number}", missed, result)
    finally:
        await sender.close()
    return result


def run(server: Notifyd, *, missed: int, rounds: int, tag: str) -> ResumeResult:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_measure(server, missed, rounds, tag))
