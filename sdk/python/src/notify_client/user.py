"""A user's side of the API (client port): the live stream, the inbox, its state, preferences.

notifyctl uses it to act as a user; tests and bots can too. Browsers and apps
use the service's Connect clients instead. Calls are not retried: a person
(or the caller's own loop) decides what to do about a failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Self, TypeVar

from connectrpc.client import ConnectClientSync, ResponseMetadata
from connectrpc.errors import ConnectError
from connectrpc.method import MethodInfo
from google.protobuf.message import Message

from notify_client import proto
from notify_client._common import to_error
from notify_client.proto import pb

__all__ = ["DEFAULT_CLIENT_ADDRESS", "UserClient", "dev_token"]

DEFAULT_CLIENT_ADDRESS = "http://localhost:8080"

REQ = TypeVar("REQ", bound=Message)
RES = TypeVar("RES", bound=Message)


def dev_token(user: str, tenant: str) -> str:
    """The unsigned token a dev-mode server accepts for (user, tenant); never in production."""
    return f"dev:{user}:{tenant}"


class UserClient:
    """Calls the client port as the user that ``token`` (a JWT, or a dev token) names."""

    def __init__(
        self, address: str = DEFAULT_CLIENT_ADDRESS, *, token: str, timeout: float = 10.0
    ) -> None:
        self._conn = ConnectClientSync(address.rstrip("/"), send_compression=None)
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout_ms = int(timeout * 1000)

    def stream_events(self, *, resume_token: str = "") -> Iterator[pb.StreamEvent]:
        """The live stream: the handshake heartbeat first, then events until it ends.

        Ends quietly when the server ends the stream cleanly; raises a
        ``NotifyError`` when it ends with an error. Close the iterator to hang up.
        """
        request = pb.StreamEventsRequest(
            device_type=pb.DEVICE_TYPE_UNSPECIFIED, resume_token=resume_token
        )
        with ResponseMetadata() as meta:
            try:
                yield from self._conn.execute_server_stream(
                    request=request, method=proto.STREAM_EVENTS, headers=self._headers
                )
            except ConnectError as exc:
                raise to_error(exc, meta.headers(), 1) from exc

    def get_notifications(
        self,
        *,
        cursor: str = "",
        limit: int = 0,
        unread_only: bool = False,
        filter: pb.NotificationFilter | None = None,
    ) -> pb.GetNotificationsResponse:
        """One page of the inbox (or of ``filter``), newest first; ``next_cursor`` is empty last."""
        request = pb.GetNotificationsRequest(
            cursor=cursor, limit=limit, unread_only=unread_only, filter=filter
        )
        return self._unary(proto.GET_NOTIFICATIONS, request)

    def ack_notification(self, id: str) -> None:
        """Marks one of the user's rows READ by its store id (``Notification.id``)."""
        self._unary(proto.ACK_NOTIFICATION, pb.AckNotificationRequest(id=id))

    def get_notification(self, id: str) -> pb.Notification:
        """One of the user's rows by store id; ``NotFound`` for any other id."""
        return self._unary(proto.GET_NOTIFICATION, pb.GetNotificationRequest(id=id)).notification

    def get_counts(self, filter: pb.NotificationFilter | None = None) -> pb.Counts:
        """Unread, unseen and total of the inbox, or of what ``filter`` selects."""
        return self._unary(proto.GET_COUNTS, pb.GetCountsRequest(filter=filter)).counts

    def mark_notifications(
        self, request: pb.MarkNotificationsRequest
    ) -> pb.MarkNotificationsResponse:
        """Changes rows' state by ids or by ``all`` + filter; ``updated`` counts real changes."""
        return self._unary(proto.MARK_NOTIFICATIONS, request)

    def delete_notifications(
        self, request: pb.DeleteNotificationsRequest
    ) -> pb.DeleteNotificationsResponse:
        """Deletes rows by ids or by ``all`` + filter; ids not the user's are ignored."""
        return self._unary(proto.DELETE_NOTIFICATIONS, request)

    def get_preferences(self) -> pb.Preferences:
        """The user's rules, with the tenant's defaults and required categories."""
        return self._unary(proto.GET_PREFERENCES, pb.GetPreferencesRequest()).preferences

    def update_preferences(
        self, rules: list[pb.PreferenceRule], *, replace: bool = False
    ) -> pb.Preferences:
        """Merges ``rules`` by (category, channel) into the user's, or replaces them all."""
        request = pb.UpdatePreferencesRequest(rules=rules, replace=replace)
        return self._unary(proto.UPDATE_PREFERENCES, request).preferences

    def _unary(self, method: MethodInfo[REQ, RES], request: REQ) -> RES:
        with ResponseMetadata() as meta:
            try:
                return self._conn.execute_unary(
                    request=request,
                    method=method,
                    headers=self._headers,
                    timeout_ms=self._timeout_ms,
                )
            except ConnectError as exc:
                raise to_error(exc, meta.headers(), 1) from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
