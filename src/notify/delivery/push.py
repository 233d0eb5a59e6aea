"""A push channel's provider: one row fans out to every registered device of its user.

``WEB_PUSH`` serves browser subscriptions, ``MOBILE_PUSH`` Android and iOS
tokens; each device goes through the DeviceSender for its type (Web Push,
FCM, APNs), all of a row's devices at once. The answers make one Receipt:

- DELIVERED as soon as one device accepted the push (the others' failures
  do not hold it back, and a delivered row is not sent again);
- a device whose push service says its token is gone is deleted and never
  retried;
- otherwise PENDING (retried with the dispatcher's backoff, never sooner than
  the latest ``Retry-After``) while any device failed transiently;
- FAILED with every device's reason when all failed for good, or when the
  user has no device this channel can reach.

Each device's answer is counted in ``notify_push_device_results_total`` by
sender and outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import Counter

from notify.core.clock import Clock
from notify.core.errors import NotifyError
from notify.core.model import Channel, Device, DeviceType, Notification, Status
from notify.core.ports import Delivery, DeviceSender, PushOutcome, PushResult, Receipt

logger = logging.getLogger("notify.delivery.push")

# The device types each push channel reaches.
CHANNEL_DEVICE_TYPES = {
    Channel.WEB_PUSH: frozenset({DeviceType.BROWSER}),
    Channel.MOBILE_PUSH: frozenset({DeviceType.ANDROID, DeviceType.IOS}),
}


class DeviceDirectory(Protocol):
    """The part of the Store a push provider needs."""

    async def list_devices(self, tenant_id: str, user_id: str) -> list[Device]: ...

    async def delete_device(
        self, tenant_id: str, user_id: str, device_type: DeviceType, token: str
    ) -> bool: ...


class PushProvider:
    def __init__(
        self,
        channel: Channel,
        senders: Sequence[DeviceSender],
        devices: DeviceDirectory,
        clock: Clock,
        *,
        results: Counter | None = None,
    ) -> None:
        types = CHANNEL_DEVICE_TYPES.get(channel)
        if types is None:
            raise ValueError(f"{channel.name} is not a push channel")
        self.channel = channel
        self.name = channel.name.lower()
        self._clock = clock
        self._devices = devices
        self._results = results
        # Label children bound on first use (an unused pair exposes no series).
        self._result_children: dict[tuple[str, PushOutcome], Any] = {}
        self._by_type: dict[DeviceType, DeviceSender] = {}
        for sender in senders:
            for kind in sender.device_types:
                if kind not in types:
                    raise ValueError(f"{sender.name} serves {kind.name}, not {channel.name}")
                if kind in self._by_type:
                    raise ValueError(f"two senders for {kind.name}")
                self._by_type[kind] = sender
        if not self._by_type:
            raise ValueError(f"no sender for {channel.name}")
        self._senders = list(senders)

    @property
    def device_types(self) -> frozenset[DeviceType]:
        return frozenset(self._by_type)

    async def close(self) -> None:
        for sender in self._senders:
            await sender.close()

    async def send(self, deliveries: Sequence[Delivery]) -> list[Receipt]:
        return list(await asyncio.gather(*(self._send(d.row) for d in deliveries)))

    async def _send(self, row: Notification) -> Receipt:
        try:
            devices = await self._devices.list_devices(row.tenant_id, row.user_id)
        except NotifyError as exc:
            return Receipt(Status.PENDING, reason=f"devices unavailable: {exc.message}")
        reachable = [d for d in devices if d.device_type in self._by_type]
        if not reachable:
            kinds = " or ".join(sorted(k.name.lower() for k in self._by_type))
            return Receipt(Status.FAILED, reason=f"no {kinds} device registered")
        results = await asyncio.gather(*(self._push(d, row) for d in reachable))
        accepted = [r for _, r in results if r.outcome is PushOutcome.ACCEPTED]
        if accepted:
            return Receipt(
                Status.DELIVERED,
                at_ms=self._clock.now_ms(),
                provider_message_id=accepted[0].provider_message_id,
            )
        reasons = "; ".join(f"{name}: {r.reason or r.outcome.value}" for name, r in results)
        transient = [r for _, r in results if r.outcome is PushOutcome.TRANSIENT]
        if transient:
            wait = max(r.retry_after_ms for r in transient)
            return Receipt(Status.PENDING, reason=reasons, retry_after_ms=wait)
        return Receipt(Status.FAILED, reason=reasons)

    async def _push(self, device: Device, row: Notification) -> tuple[str, PushResult]:
        sender = self._by_type[device.device_type]
        try:
            result = await sender.send(device, row)
        except Exception as exc:  # a sender bug must not lose the others' answers
            logger.warning(
                "push sender raised", extra={"sender": sender.name, "error": type(exc).__name__}
            )
            result = PushResult(PushOutcome.TRANSIENT, reason=f"sender error: {type(exc).__name__}")
        if result.outcome is PushOutcome.GONE:
            try:
                await self._devices.delete_device(
                    device.tenant_id, device.user_id, device.device_type, device.token
                )
            except NotifyError as exc:  # it will say GONE again next time
                logger.warning("could not delete a gone device", extra={"reason": exc.message})
        if self._results is not None:
            key = (sender.name, result.outcome)
            child = self._result_children.get(key)
            if child is None:
                child = self._result_children[key] = self._results.labels(
                    sender=sender.name, outcome=result.outcome.value
                )
            child.inc()
        return sender.name, result
