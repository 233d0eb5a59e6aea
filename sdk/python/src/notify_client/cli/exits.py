"""notifyctl's exit codes: scripts branch on the outcome without parsing text."""

from __future__ import annotations

from connectrpc.code import Code

from notify_client.errors import NotifyError

OK = 0
# The server failed or could not be reached (unavailable, internal, deadline, ...).
SERVER_ERROR = 1
# Bad flags or input, including what the server refused as invalid_argument.
USAGE = 2
# Missing or wrong credentials (unauthenticated, permission_denied).
UNAUTHENTICATED = 3
# An id that is not the caller's, or does not exist.
NOT_FOUND = 4

_BY_CODE = {
    Code.INVALID_ARGUMENT: USAGE,
    Code.OUT_OF_RANGE: USAGE,
    Code.UNAUTHENTICATED: UNAUTHENTICATED,
    Code.PERMISSION_DENIED: UNAUTHENTICATED,
    Code.NOT_FOUND: NOT_FOUND,
}


def for_error(error: NotifyError) -> int:
    return _BY_CODE.get(error.code, SERVER_ERROR)
