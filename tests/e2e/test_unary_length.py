"""A large unary answer over HTTP/1.1 is sent with its length; a small one stays chunked.

The client is a raw socket, so the framing checked is exactly what the
server wrote: the head, then either ``content-length`` bytes or chunks.
Several answers share one kept-alive connection, so a wrong length would
misframe the next answer.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from elloloop.notify.v1 import notify_pb2 as pb
from google.protobuf import json_format

from tests.raw_http import RawHttp1
from tests.support import CLIENT_SVC, ServerThread, notify_body

USER = "user-length"
ROWS = 12
BODY_TEXT = "é" * 1500  # 3,000 bytes of UTF-8 per row: a page well past 16 KiB
PAGES = f"{CLIENT_SVC}/GetNotifications"
COUNTS = f"{CLIENT_SVC}/GetCounts"


@pytest.fixture
def client(server: ServerThread, http: httpx.Client) -> Iterator[RawHttp1]:
    for number in range(ROWS):
        body = notify_body(f"length-{number}", USER, body=BODY_TEXT)
        assert http.post(server.internal_url(), json=body).status_code == 200
    with RawHttp1(server.ports.client, f"Bearer dev:{USER}:acme") as raw:
        yield raw


def test_a_large_json_page_has_its_length_and_the_next_answer_follows(client: RawHttp1) -> None:
    for _ in range(2):  # the second answer parses only if the first was framed exactly
        page = client.post(PAGES, b'{"limit": 50}', "application/json")
        assert page.status.startswith(b"HTTP/1.1 200"), page.status
        assert b"transfer-encoding" not in page.headers
        assert int(page.headers[b"content-length"]) == len(page.body) > 16 * 1024
        rows = pb.GetNotificationsResponse()
        json_format.Parse(page.body, rows)
        assert [row.body for row in rows.notifications] == [BODY_TEXT] * ROWS


def test_a_large_binary_page_has_its_length(client: RawHttp1) -> None:
    request = pb.GetNotificationsRequest(limit=50).SerializeToString()
    page = client.post(PAGES, request, "application/proto")
    assert page.status.startswith(b"HTTP/1.1 200"), page.status
    assert int(page.headers[b"content-length"]) == len(page.body) > 16 * 1024
    assert len(pb.GetNotificationsResponse.FromString(page.body).notifications) == ROWS


def test_small_answers_and_errors_stay_chunked_on_the_same_connection(client: RawHttp1) -> None:
    counts = client.post(COUNTS, b"{}", "application/json")
    assert counts.status.startswith(b"HTTP/1.1 200")
    assert counts.headers.get(b"transfer-encoding") == b"chunked"
    assert b'"unread":12' in counts.body.replace(b" ", b"")
    refused = client.post(PAGES, b'{"limit": "many"}', "application/json")
    assert refused.status.startswith(b"HTTP/1.1 400"), refused.status
    assert b"invalid_argument" in refused.body
    page = client.post(PAGES, b'{"limit": 50}', "application/json")
    assert int(page.headers[b"content-length"]) == len(page.body)
