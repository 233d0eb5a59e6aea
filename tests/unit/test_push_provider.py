"""The push fan-out: one row to every device of the user through the sender for its type,
answered as one Receipt (with fake senders; the real Web Push sender has its own tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from notify.core.clock import ManualClock
from notify.core.errors import Unavailable
from notify.core.model import Channel, Device, DeviceType, Notification, Status
from notify.core.ports import Delivery, PushOutcome, PushResult
from notify.delivery.push import PushProvider
from notify.metrics import Metrics
from notify.store.conformance import make_row
from notify.store.memory import MemoryStore


class FakeSender:
    """Answers each token from ``answers`` (ACCEPTED otherwise) and records what it sent."""

    def __init__(
        self, name: str, kinds: Sequence[DeviceType], answers: dict[str, PushResult] | None = None
    ) -> None:
        self.name = name
        self.device_types = frozenset(kinds)
        self.answers = answers or {}
        self.sent: list[tuple[str, str]] = []  # (token, row id)
        self.closed = False
        self.in_flight = 0
        self.most_in_flight = 0

    async def send(self, device: Device, row: Notification) -> PushResult:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0)  # let the other devices start: they go out together
        self.in_flight -= 1
        self.sent.append((device.token, row.id))
        answer = self.answers.get(device.token, PushResult(PushOutcome.ACCEPTED, "", device.token))
        return answer

    async def close(self) -> None:
        self.closed = True


class BrokenSender(FakeSender):
    async def send(self, device: Device, row: Notification) -> PushResult:
        raise RuntimeError("secret-ish detail that must not be the reason")


async def devices(store: MemoryStore, *pairs: tuple[DeviceType, str], user: str = "u1") -> None:
    for at, (kind, token) in enumerate(pairs):
        await store.upsert_device(Device("t1", user, kind, token, at))


def row(channel: Channel = Channel.MOBILE_PUSH) -> Notification:
    return make_row(0, channel=channel)


def provider(
    store: MemoryStore, *senders: FakeSender, channel: Channel = Channel.MOBILE_PUSH
) -> tuple[PushProvider, Metrics]:
    metrics = Metrics()
    push = PushProvider(
        channel, list(senders), store, ManualClock(5_000), results=metrics.push_device_results
    )
    return push, metrics


def counted(metrics: Metrics, sender: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "notify_push_device_results_total", {"sender": sender, "outcome": outcome}
    )
    return value or 0.0


async def test_mobile_push_fans_out_to_android_and_ios_at_once() -> None:
    store = MemoryStore()
    fcm = FakeSender("fcm", [DeviceType.ANDROID])
    apns = FakeSender("apns", [DeviceType.IOS])
    await devices(
        store,
        (DeviceType.ANDROID, "a1"),
        (DeviceType.ANDROID, "a2"),
        (DeviceType.IOS, "i1"),
        (DeviceType.BROWSER, "b1"),  # web push's, not this channel's
    )
    await devices(store, (DeviceType.ANDROID, "other"), user="u2")
    push, metrics = provider(store, fcm, apns)
    target = row()
    (receipt,) = await push.send([Delivery(target, "")])
    assert receipt.status is Status.DELIVERED
    assert receipt.at_ms == 5_000
    assert receipt.provider_message_id in {"a1", "a2", "i1"}
    assert sorted(fcm.sent) == [("a1", target.id), ("a2", target.id)]
    assert apns.sent == [("i1", target.id)]
    assert fcm.most_in_flight == 2
    assert counted(metrics, "fcm", "accepted") == 2
    assert counted(metrics, "apns", "accepted") == 1
    assert push.name == "mobile_push"
    assert push.device_types == {DeviceType.ANDROID, DeviceType.IOS}


async def test_one_acceptance_is_delivered_and_gone_devices_are_deleted() -> None:
    store = MemoryStore()
    fcm = FakeSender(
        "fcm",
        [DeviceType.ANDROID],
        {
            "a1": PushResult(PushOutcome.GONE, "UNREGISTERED"),
            "a2": PushResult(PushOutcome.TRANSIENT, "HTTP 503", retry_after_ms=9_000),
        },
    )
    await devices(store, (DeviceType.ANDROID, "a1"), (DeviceType.ANDROID, "a2"))
    await devices(store, (DeviceType.ANDROID, "a3"))
    push, metrics = provider(store, fcm)
    (receipt,) = await push.send([Delivery(row(), "")])
    assert receipt.status is Status.DELIVERED
    assert [d.token for d in await store.list_devices("t1", "u1")] == ["a2", "a3"]
    assert counted(metrics, "fcm", "gone") == 1
    assert counted(metrics, "fcm", "transient") == 1


async def test_transient_failures_keep_it_pending_with_the_latest_retry_after() -> None:
    store = MemoryStore()
    fcm = FakeSender(
        "fcm",
        [DeviceType.ANDROID],
        {"a1": PushResult(PushOutcome.TRANSIENT, "HTTP 429", "", 2_000)},
    )
    apns = FakeSender(
        "apns",
        [DeviceType.IOS],
        {
            "i1": PushResult(PushOutcome.TRANSIENT, "HTTP 503", "", 7_000),
            "i2": PushResult(PushOutcome.PERMANENT, "BadTopic"),
        },
    )
    await devices(store, (DeviceType.ANDROID, "a1"), (DeviceType.IOS, "i1"), (DeviceType.IOS, "i2"))
    push, _ = provider(store, fcm, apns)
    (receipt,) = await push.send([Delivery(row(), "")])
    assert receipt.status is Status.PENDING
    assert receipt.retry_after_ms == 7_000
    assert receipt.reason == "fcm: HTTP 429; apns: HTTP 503; apns: BadTopic"
    assert len(await store.list_devices("t1", "u1")) == 3


async def test_all_permanent_or_gone_is_failed_with_every_reason() -> None:
    store = MemoryStore()
    fcm = FakeSender(
        "fcm",
        [DeviceType.ANDROID],
        {
            "a1": PushResult(PushOutcome.PERMANENT, "INVALID_ARGUMENT: bad payload"),
            "a2": PushResult(PushOutcome.GONE, ""),
        },
    )
    await devices(store, (DeviceType.ANDROID, "a1"), (DeviceType.ANDROID, "a2"))
    push, _ = provider(store, fcm)
    (receipt,) = await push.send([Delivery(row(), "")])
    assert receipt.status is Status.FAILED
    assert receipt.reason == "fcm: INVALID_ARGUMENT: bad payload; fcm: gone"


async def test_a_sender_that_raises_is_transient_and_its_text_is_not_the_reason() -> None:
    store = MemoryStore()
    await devices(store, (DeviceType.IOS, "i1"))
    push, metrics = provider(store, BrokenSender("apns", [DeviceType.IOS]))
    (receipt,) = await push.send([Delivery(row(), "")])
    assert receipt.status is Status.PENDING
    assert receipt.reason == "apns: sender error: RuntimeError"
    assert "secret" not in receipt.reason
    assert counted(metrics, "apns", "transient") == 1


async def test_no_reachable_device_is_failed_naming_the_types() -> None:
    store = MemoryStore()
    await devices(store, (DeviceType.IOS, "i1"))  # no iOS sender configured
    push, _ = provider(store, FakeSender("fcm", [DeviceType.ANDROID]))
    (receipt,) = await push.send([Delivery(row(), "")])
    assert (receipt.status, receipt.reason) == (Status.FAILED, "no android device registered")
    both, _ = provider(
        store, FakeSender("fcm", [DeviceType.ANDROID]), FakeSender("apns", [DeviceType.IOS])
    )
    (receipt,) = await both.send([Delivery(make_row(1, user="nobody"), "")])
    assert receipt.reason == "no android or ios device registered"


async def test_several_rows_get_one_receipt_each_in_order() -> None:
    store = MemoryStore()
    await devices(store, (DeviceType.BROWSER, "b1"))
    await devices(store, (DeviceType.BROWSER, "b2"), user="u2")
    web = FakeSender(
        "webpush", [DeviceType.BROWSER], {"b2": PushResult(PushOutcome.PERMANENT, "x")}
    )
    push, _ = provider(store, web, channel=Channel.WEB_PUSH)
    rows = [make_row(0, channel=Channel.WEB_PUSH), make_row(1, user="u2", channel=Channel.WEB_PUSH)]
    receipts = await push.send([Delivery(r, "") for r in rows])
    assert [r.status for r in receipts] == [Status.DELIVERED, Status.FAILED]


async def test_an_unreachable_store_leaves_the_row_pending() -> None:
    class Away(MemoryStore):
        async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]:
            raise Unavailable("the store is unreachable")

    push, _ = provider(Away(), FakeSender("fcm", [DeviceType.ANDROID]))
    (receipt,) = await push.send([Delivery(row(), "")])
    assert receipt.status is Status.PENDING
    assert receipt.reason == "devices unavailable: the store is unreachable"


async def test_close_closes_every_sender() -> None:
    fcm, apns = FakeSender("fcm", [DeviceType.ANDROID]), FakeSender("apns", [DeviceType.IOS])
    push, _ = provider(MemoryStore(), fcm, apns)
    await push.close()
    assert fcm.closed
    assert apns.closed


def test_senders_must_fit_the_channel() -> None:
    store = MemoryStore()
    clock = ManualClock()
    web = FakeSender("webpush", [DeviceType.BROWSER])
    with pytest.raises(ValueError, match="webpush serves BROWSER, not MOBILE_PUSH"):
        PushProvider(Channel.MOBILE_PUSH, [web], store, clock)
    with pytest.raises(ValueError, match="two senders for ANDROID"):
        PushProvider(
            Channel.MOBILE_PUSH,
            [FakeSender("a", [DeviceType.ANDROID]), FakeSender("b", [DeviceType.ANDROID])],
            store,
            clock,
        )
    with pytest.raises(ValueError, match="no sender"):
        PushProvider(Channel.WEB_PUSH, [], store, clock)
    with pytest.raises(ValueError, match="EMAIL is not a push channel"):
        PushProvider(Channel.EMAIL, [web], store, clock)
