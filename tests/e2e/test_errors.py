"""Every error case in CONTRACT.md answers with its Connect code and a JSON body."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import (
    INTERNAL_TOKEN,
    JWT_SECRET,
    ConnectStream,
    EndOfStream,
    ServerThread,
    dev_auth,
    make_jwt,
    notify_body,
    running_server,
)

ISSUER = "https://auth.example.test"
AUDIENCE = "notify"


@pytest.fixture(scope="module")
def secured() -> Iterator[ServerThread]:
    """Production-like auth: JWT with pinned iss/aud, internal token, no dev mode."""
    with running_server(
        dev_mode=False,
        jwt_secret=JWT_SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_leeway=5.0,
        internal_token=INTERNAL_TOKEN,
    ) as srv:
        yield srv


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def good_token(**overrides: Any) -> str:
    claims: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE}
    claims.update(overrides)
    return make_jwt(**claims)


def assert_error(response: httpx.Response, code: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["message"]
    assert "Traceback" not in body["message"]
    return body


def list_inbox(server: ServerThread, http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    return http.post(server.client_url("GetNotifications"), headers=headers, json={})


def test_valid_jwt_is_accepted(secured: ServerThread, http: httpx.Client) -> None:
    response = list_inbox(secured, http, bearer(good_token()))
    assert response.status_code == 200, response.text
    with_tenant_id = good_token(tenant_id="acme")
    assert list_inbox(secured, http, bearer(with_tenant_id)).status_code == 200


def _alg_none_token() -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {
        "sub": "user-alice",
        "tenant": "acme",
        "exp": 4102444800,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "not bearer"),
        (bearer("not-a-jwt"), "garbage"),
        (bearer(good_token(expires_in=-60)), "expired"),
        (
            bearer(
                make_jwt(secret="another-secret-that-is-32-bytes-long!!", iss=ISSUER, aud=AUDIENCE)
            ),
            "forged",
        ),
        (bearer(_alg_none_token()), "alg none"),
        (bearer(good_token(iss="https://evil.example")), "wrong issuer"),
        (bearer(good_token(aud="someone-else")), "wrong audience"),
        (bearer(good_token(tenant="")), "no tenant"),
        (bearer(good_token(sub="")), "no subject"),
        (dev_auth(), "dev token outside dev mode"),
    ],
)
def test_bad_credentials_are_unauthenticated(
    secured: ServerThread, http: httpx.Client, headers: dict[str, str], why: str
) -> None:
    body = assert_error(list_inbox(secured, http, headers), "unauthenticated", 401)
    assert JWT_SECRET not in body["message"], why


def test_expired_token_within_leeway_is_accepted(secured: ServerThread, http: httpx.Client) -> None:
    response = list_inbox(secured, http, bearer(good_token(expires_in=-2)))
    assert response.status_code == 200, response.text


def test_stream_with_bad_token_ends_unauthenticated(
    secured: ServerThread, http: httpx.Client
) -> None:
    stream = ConnectStream(http, secured.client_url("StreamEvents"), bearer("nope"), {})
    try:
        with pytest.raises(EndOfStream) as ended:
            stream.next()
        assert ended.value.code == "unauthenticated"
    finally:
        stream.close()


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Notify-Internal-Token": "wrong"}, {"X-Notify-Internal-Token": INTERNAL_TOKEN + "x"}],
    ids=["missing", "wrong", "longer"],
)
def test_wrong_internal_token_is_unauthenticated(
    secured: ServerThread, http: httpx.Client, headers: dict[str, str]
) -> None:
    response = http.post(secured.internal_url(), headers=headers, json=notify_body("n-1"))
    assert_error(response, "unauthenticated", 401)


def test_right_internal_token_is_accepted(secured: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        secured.internal_url(),
        headers={"X-Notify-Internal-Token": INTERNAL_TOKEN},
        json=notify_body("n-ok"),
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"notificationId": "n", "userIds": ["u"]}, "tenant_id"),
        ({"tenantId": "acme", "userIds": ["u"]}, "notification_id"),
        ({"tenantId": "acme", "notificationId": "n"}, "user_ids"),
        ({"tenantId": "acme", "notificationId": "n", "userIds": [""]}, "user_ids"),
        (
            {
                "tenantId": "acme",
                "notificationId": "n",
                "userIds": ["u"],
                "channels": ["DELIVERY_CHANNEL_UNSPECIFIED"],
            },
            "channels",
        ),
        (
            {"tenantId": "acme", "notificationId": "n", "userIds": ["u"], "channels": [99]},
            "channels",
        ),
        (
            {"tenantId": "acme", "notificationId": "n", "userIds": ["u"], "title": "a\u0000b"},
            "title",
        ),
        (
            {"tenantId": "acme", "notificationId": "n", "userIds": ["u"], "body": "x" * 70000},
            "body",
        ),
    ],
)
def test_notify_validation(
    server: ServerThread, http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    error = assert_error(http.post(server.internal_url(), json=body), "invalid_argument", 400)
    assert field in error["message"]


def test_malformed_json_is_invalid_argument(server: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        server.internal_url(),
        headers={"Content-Type": "application/json"},
        content=b'{"tenantId": ',
    )
    assert_error(response, "invalid_argument", 400)
    wrong_type = http.post(server.internal_url(), json={"userIds": "not-a-list"})
    assert_error(wrong_type, "invalid_argument", 400)


def test_malformed_protobuf_is_invalid_argument(server: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        server.internal_url(),
        headers={"Content-Type": "application/proto"},
        content=b"\xff\xff\xff",
    )
    assert_error(response, "invalid_argument", 400)


def test_wrong_content_type_is_415(server: ServerThread, http: httpx.Client) -> None:
    response = http.post(
        server.internal_url(), headers={"Content-Type": "text/plain"}, content=b"{}"
    )
    assert response.status_code == 415
    assert "application/json" in response.headers["accept-post"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "id"), ({"id": "x" * 300}, "id")],
)
def test_ack_validation(
    server: ServerThread, http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    error = assert_error(
        http.post(server.client_url("AckNotification"), headers=dev_auth(), json=body),
        "invalid_argument",
        400,
    )
    assert field in error["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": "t"}, "device_type"),
        ({"deviceType": "DEVICE_TYPE_IOS"}, "token"),
        ({"deviceType": 42, "token": "t"}, "device_type"),
    ],
)
def test_register_push_token_validation(
    server: ServerThread, http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    error = assert_error(
        http.post(server.client_url("RegisterPushToken"), headers=dev_auth(), json=body),
        "invalid_argument",
        400,
    )
    assert field in error["message"]


def test_ack_data_change_validation(server: ServerThread, http: httpx.Client) -> None:
    missing_key = http.post(
        server.client_url("AckDataChange"), headers=dev_auth(), json={"sessionId": "s"}
    )
    assert "idempotency_key" in assert_error(missing_key, "invalid_argument", 400)["message"]
    missing_session = http.post(
        server.client_url("AckDataChange"), headers=dev_auth(), json={"idempotencyKey": "k"}
    )
    assert "session_id" in assert_error(missing_session, "invalid_argument", 400)["message"]


def test_other_users_and_tenants_rows_are_not_found(
    server: ServerThread, http: httpx.Client
) -> None:
    http.post(server.internal_url(), json=notify_body("private", "user-alice", tenant="acme"))
    row = list_inbox(server, http, dev_auth("user-alice", "acme")).json()["notifications"][0]
    for intruder in (dev_auth("user-mallory", "acme"), dev_auth("user-alice", "globex")):
        response = http.post(
            server.client_url("AckNotification"), headers=intruder, json={"id": row["id"]}
        )
        assert_error(response, "not_found", 404)
    unknown = http.post(
        server.client_url("AckNotification"),
        headers=dev_auth(),
        json={"id": "00000000-0000-7000-8000-000000000000"},
    )
    assert_error(unknown, "not_found", 404)
    # The owner's row is untouched by the attempts.
    again = list_inbox(server, http, dev_auth("user-alice", "acme")).json()["notifications"][0]
    assert again["status"] == "DELIVERY_STATUS_PENDING"


@pytest.mark.parametrize(
    "cursor", ["%%%", "bm90LWEtY3Vyc29y", "djE6YWJjOmlk", "djE6MTIz", "x" * 1000]
)
def test_bad_cursor_is_invalid_argument(
    server: ServerThread, http: httpx.Client, cursor: str
) -> None:
    response = http.post(
        server.client_url("GetNotifications"), headers=dev_auth(), json={"cursor": cursor}
    )
    assert "cursor" in assert_error(response, "invalid_argument", 400)["message"]


def test_live_streaming_switched_off_is_unimplemented(http: httpx.Client) -> None:
    with running_server(live_connections_enabled=False) as srv:
        stream = ConnectStream(http, srv.client_url("StreamEvents"), dev_auth(), {})
        try:
            with pytest.raises(EndOfStream) as ended:
                stream.next()
            assert ended.value.code == "unimplemented"
        finally:
            stream.close()


def test_deadline_is_enforced(server: ServerThread, http: httpx.Client) -> None:
    """connect-timeout-ms is honoured: 0 ms has always expired."""
    response = http.post(
        server.client_url("GetNotifications"),
        headers={**dev_auth(), "Connect-Timeout-Ms": "0"},
        json={},
    )
    assert_error(response, "deadline_exceeded", 504)


@pytest.mark.parametrize(
    "field", ["tenantId", "notificationId", "userIds", "subjectRef", "subjectType", "title", "body"]
)
def test_nul_is_invalid_argument_on_every_driver(
    server: ServerThread, http: httpx.Client, field: str
) -> None:
    """PostgreSQL text cannot hold NUL, so no driver accepts it: same answer everywhere."""
    body = notify_body("nul-test")
    body[field] = ["bad\u0000id"] if field == "userIds" else "bad\u0000value"
    assert_error(http.post(server.internal_url(), json=body), "invalid_argument", 400)
    token = http.post(
        server.client_url("RegisterPushToken"),
        headers=dev_auth(),
        json={"deviceType": "DEVICE_TYPE_IOS", "token": "a\u0000b"},
    )
    assert_error(token, "invalid_argument", 400)
