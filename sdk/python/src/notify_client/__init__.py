"""notify_client: the producer SDK of the notify service.

>>> from notify_client import NotifyClient
>>> with NotifyClient("http://localhost:8081") as notify:
...     notify.notify(tenant_id="acme", user_ids=["user-alice"], title="New comment")

``AsyncNotifyClient`` is the asyncio twin; ``BackgroundSender`` and
``AsyncBackgroundSender`` queue notifications for producers that must not wait.
"""

from notify_client._common import DataChangeResult, NotifyResult
from notify_client.aio import AsyncNotifyClient
from notify_client.background import AsyncBackgroundSender, BackgroundSender, QueueFull
from notify_client.client import NotifyClient
from notify_client.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    NotifyError,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from notify_client.payload import Action, NotifyFields
from notify_client.retry import RetryPolicy

__all__ = [
    "Action",
    "AsyncBackgroundSender",
    "AsyncNotifyClient",
    "BackgroundSender",
    "DataChangeResult",
    "DeadlineExceeded",
    "InvalidArgument",
    "NotFound",
    "NotifyClient",
    "NotifyError",
    "NotifyFields",
    "NotifyResult",
    "QueueFull",
    "ResourceExhausted",
    "RetryPolicy",
    "Unauthenticated",
    "Unavailable",
]
