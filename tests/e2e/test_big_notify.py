"""The largest Notify the limits allow succeeds on every store, and a larger one is refused."""

from __future__ import annotations

import httpx
import pytest

from notify.core.commands import MAX_BODY_LENGTH, MAX_STORED_BYTES_PER_NOTIFY, MAX_USERS_PER_NOTIFY
from tests.support import ServerThread, dev_auth, notify_body

TITLE = "A big one"
SUBJECT = "task:42task"  # subject_ref + subject_type of notify_body


def largest_body(users: int) -> str:
    per_copy = MAX_STORED_BYTES_PER_NOTIFY // users - len(TITLE) - len(SUBJECT)
    return "x" * min(MAX_BODY_LENGTH, per_copy)


@pytest.mark.parametrize("users", [MAX_USERS_PER_NOTIFY, 500], ids=["most-users", "largest-body"])
def test_the_largest_allowed_notify_succeeds_and_its_retry_too(
    server: ServerThread, users: int
) -> None:
    body = largest_body(users)
    request = notify_body("big", *[f"user-{i}" for i in range(users)], title=TITLE, body=body)
    with httpx.Client(timeout=120) as http:
        first = http.post(server.internal_url(), json=request)
        assert first.status_code == 200, first.text
        assert first.json() == {"delivered": 0, "pending": users, "failed": 0}
        retry = http.post(server.internal_url(), json=request)
        assert retry.status_code == 200, retry.text
        assert retry.json() == first.json()
        page = http.post(
            server.client_url("GetNotifications"), headers=dev_auth(f"user-{users - 1}"), json={}
        ).json()
    [row] = page["notifications"]
    assert row["body"] == body


def test_one_byte_more_is_invalid_argument(server: ServerThread, http: httpx.Client) -> None:
    users = 1024  # 32 KiB of text per copy fits; one byte more does not
    fits = "x" * (MAX_STORED_BYTES_PER_NOTIFY // users - len(TITLE) - len(SUBJECT))
    assert len(fits) < MAX_BODY_LENGTH
    body = fits + "x"
    request = notify_body("too-big", *[f"user-{i}" for i in range(users)], title=TITLE, body=body)
    refused = http.post(server.internal_url(), json=request)
    assert refused.status_code == 400
    error = refused.json()
    assert error["code"] == "invalid_argument"
    assert "fewer user_ids" in error["message"]
