"""Rate limits answer RESOURCE_EXHAUSTED with a retry hint, per caller, on every protocol."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from elloloop.notify.v1 import notify_pb2_grpc
from google.rpc import error_details_pb2, status_pb2

from notify.core.clock import ManualClock
from notify.core.ratelimit import Rate
from tests.support import ServerThread, dev_auth, notify_body, running_server


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def limited(clock: ManualClock) -> Iterator[ServerThread]:
    with running_server(
        clock=clock,
        rate_limit_client=Rate(3, 60.0),
        rate_limit_producer=Rate(4, 60.0),
        rate_limit_recipients=Rate(5, 60.0),
    ) as server:
        yield server


def inbox(server: ServerThread, http: httpx.Client, user: str = "user-alice") -> httpx.Response:
    return http.post(server.client_url("GetNotifications"), headers=dev_auth(user), json={})


def retry_delay_seconds(error: dict[str, Any]) -> float:
    [detail] = error["details"]
    assert detail["type"] == "google.rpc.RetryInfo"
    info = error_details_pb2.RetryInfo.FromString(
        base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
    )
    return float(info.retry_delay.ToNanoseconds()) / 1e9


def test_client_calls_per_user(
    limited: ServerThread, clock: ManualClock, http: httpx.Client
) -> None:
    for _ in range(3):
        assert inbox(limited, http).status_code == 200
    refused = inbox(limited, http)
    assert refused.status_code == 429
    error = refused.json()
    assert error["code"] == "resource_exhausted"
    assert "rate limit" in error["message"]
    assert refused.headers["retry-after"] == "20"  # 3 per minute: one token every 20 s
    assert retry_delay_seconds(error) == pytest.approx(20.0)
    assert inbox(limited, http, user="user-bob").status_code == 200  # others are not affected
    clock.advance(20)
    assert inbox(limited, http).status_code == 200


def test_a_stream_open_spends_a_token(limited: ServerThread, http: httpx.Client) -> None:
    for _ in range(3):
        assert inbox(limited, http).status_code == 200
    with http.stream(
        "POST",
        limited.client_url("StreamEvents"),
        headers={**dev_auth(), "Content-Type": "application/connect+json"},
        content=b"\x00\x00\x00\x00\x02{}",
    ) as stream:
        body = stream.read()
    assert b"resource_exhausted" in body


def test_producer_calls_over_grpc_carry_retry_info(limited: ServerThread) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{limited.ports.internal}") as channel:
        stub = notify_pb2_grpc.NotificationInternalServiceStub(channel)
        for i in range(4):
            stub.Notify(
                pb.NotifyRequest(tenant_id=f"t{i}", notification_id="n", user_ids=["u"]),
                timeout=10,
            )
        with pytest.raises(grpc.RpcError) as refused:
            stub.Notify(pb.NotifyRequest(tenant_id="t9", notification_id="n", user_ids=["u"]))
    error = refused.value
    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(error.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    info = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info)
    assert info.retry_delay.seconds == 15


def test_notify_recipients_per_tenant(limited: ServerThread, http: httpx.Client) -> None:
    ok = http.post(limited.internal_url(), json=notify_body("n-1", "a", "b", "c"))
    assert ok.status_code == 200
    refused = http.post(limited.internal_url(), json=notify_body("n-2", "d", "e", "f"))
    assert refused.status_code == 429
    assert refused.json()["code"] == "resource_exhausted"
    assert "recipients" in refused.json()["message"]
    assert int(refused.headers["retry-after"]) >= 1
    other = http.post(limited.internal_url(), json=notify_body("n-3", "d", tenant="globex"))
    assert other.status_code == 200
    # Nothing of the refused Notify was stored.
    assert inbox(limited, http, user="d").json()["notifications"] == []
