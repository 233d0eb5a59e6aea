"""The seams the service is written against: the bus and the delivery providers.

(The Store protocol lives with its drivers in ``notify.store``; the Clock in
``notify.core.clock``.) Implementations are chosen by the composition root
(``notify.server``) from configuration; nothing above them names a driver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from notify.core.events import BusEvent
from notify.core.model import Channel, Device, DeviceType, Notification, Status

Unsubscribe = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Announcement:
    """NOTIFY payloads for ``channel``, sent in the store's own transaction.

    A bus across processes hands these to the store so that the news of new
    rows commits with the rows themselves: no replica hears of a row that
    rolled back, and none misses one because this process died after the
    commit and before a NOTIFY of its own.
    """

    channel: str
    payloads: tuple[str, ...]


# Called by the store inside its insert transaction with the rows it actually
# created there (never the idempotent repeats); what it answers is sent in that
# transaction. It may be called more than once for one call (a batch retried
# in another shape): the last call's answer is the one that committed. If it
# has nothing to say about some rows it has nothing to say about fewer of them.
# If it raises, the transaction fails, like any other error.
Announcer = Callable[[Sequence[Notification]], Announcement | None]


class Bus(Protocol):
    """Carries events between the service and the live sessions of every replica.

    ``publish`` never blocks: a bus across processes queues and sends in the
    background. Every subscriber, in every replica, sees every event, in the
    order one replica published them.
    """

    # This process's name on the bus: replies are addressed to it.
    replica_id: str
    # How long a requester waits for replies from other replicas (0: replies
    # are synchronous, the in-process bus).
    reply_wait: float

    def publish(self, event: BusEvent) -> None: ...

    def announcement(self, event: BusEvent) -> Announcement | None:
        """The payloads that carry ``event`` to the other replicas from inside a
        store transaction; None when this bus has no other replica to tell."""
        ...

    def dispatch_announced(self, event: BusEvent) -> None:
        """Dispatches an event whose ``announcement`` committed: here only."""
        ...

    def subscribe(self, handler: Callable[[BusEvent], None]) -> Unsubscribe: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stored row to send, with the address its channel needs ("" for in-app)."""

    row: Notification
    address: str


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a provider did with one delivery.

    DELIVERED (stamped ``at_ms``), PENDING (not yet: no live session, or queued
    for a retry) or FAILED (with a ``reason`` safe to show the producer).
    """

    status: Status
    at_ms: int = 0
    provider_message_id: str = ""
    reason: str = ""
    # PENDING from an external provider: the earliest retry the receiver asked
    # for (Retry-After), in ms from now; 0 leaves the wait to the backoff.
    retry_after_ms: int = 0


class Provider(Protocol):
    """Sends rows of one channel. ``send`` answers one Receipt per Delivery, in order."""

    name: str
    channel: Channel

    async def send(self, deliveries: Sequence[Delivery]) -> list[Receipt]: ...


class PushOutcome(Enum):
    """How one device's push service answered one push."""

    ACCEPTED = "accepted"  # the push service took it (it delivers when the device wakes)
    GONE = "gone"  # the token no longer exists: forget the device, never retry it
    TRANSIENT = "transient"  # try again later (429, 5xx, timeouts), after retry_after_ms if set
    PERMANENT = "permanent"  # this push will never be accepted as it is (bad key, bad payload)


@dataclass(frozen=True, slots=True)
class PushResult:
    """One device's answer; ``reason`` is safe to show the producer (never a credential)."""

    outcome: PushOutcome
    reason: str = ""
    provider_message_id: str = ""
    retry_after_ms: int = 0


class DeviceSender(Protocol):
    """Sends one stored row to one registered device of the types it serves.

    A push channel's provider (``notify.delivery.push``) fans a row out to
    every device of the user through the sender for each device's type, and
    turns the answers into one Receipt: DELIVERED when at least one device
    accepted it. Senders never touch the store; GONE answers make the
    provider delete the device.
    """

    # The metric label and log name: "webpush", "fcm", "apns".
    name: str
    device_types: frozenset[DeviceType]

    async def send(self, device: Device, row: Notification) -> PushResult: ...

    async def close(self) -> None: ...
