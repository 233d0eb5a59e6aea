"""The service's error vocabulary, free of any transport.

The orchestrator and the stores raise these; the API layer maps each to its
Connect/gRPC code in one place (``notify.api.errors``). Messages are written
for the caller: they never carry internals such as SQL or stack traces.
"""

from __future__ import annotations


class NotifyError(Exception):
    """Base class: ``message`` is safe to show the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(NotifyError):
    """The request is malformed or breaks a documented limit."""


class NotFound(NotifyError):
    """No such row for this caller (also used for other users' rows: no existence leak)."""


class Unauthenticated(NotifyError):
    """Missing, malformed, expired or forged credentials."""


class Unavailable(NotifyError):
    """A dependency (the store) cannot be reached now; the caller may retry."""


class ResourceExhausted(NotifyError):
    """A configured limit was reached (for example a slow stream's queue)."""


class OutOfRange(NotifyError):
    """A position (a resume token) is further back than the service replays."""


class Unimplemented(NotifyError):
    """The feature is switched off on this server."""
