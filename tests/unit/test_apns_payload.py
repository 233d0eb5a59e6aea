"""What a row looks like to APNs (notify.delivery.apns_payload): the headers, and a
payload that is never over 4 KiB and gives way in the documented order."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from notify.core.model import Action, Channel, Notification, Severity
from notify.delivery import apns_payload
from notify.delivery.apns_payload import MAX_PAYLOAD_BYTES, payload
from notify.store.conformance import make_row

TOKEN = "ab" * 32


def row(title: str = "Title", body: str = "Body", **fields: Any) -> Notification:
    made = make_row(0, channel=Channel.MOBILE_PUSH, **fields)
    made.title, made.body = title, body
    return made


def decoded(data: bytes) -> Any:
    return orjson.loads(data)


def test_apns_id_is_a_canonical_uuid_fixed_by_row_and_device() -> None:
    first = apns_payload.message_id("row-1", TOKEN)
    assert str(uuid.UUID(first)) == first  # canonical, lower-case
    assert apns_payload.message_id("row-1", TOKEN) == first
    assert apns_payload.message_id("row-2", TOKEN) != first
    assert apns_payload.message_id("row-1", "cd" * 32) != first


@pytest.mark.parametrize(
    ("severity", "priority"),
    [
        (Severity.UNSPECIFIED, "10"),
        (Severity.INFO, "5"),
        (Severity.SUCCESS, "5"),
        (Severity.WARNING, "10"),
        (Severity.ERROR, "10"),
    ],
)
def test_priority_follows_severity(severity: Severity, priority: str) -> None:
    assert apns_payload.priority(severity) == priority


def test_expiration_is_epoch_seconds_rounded_up_and_absent_when_unset() -> None:
    assert apns_payload.expiration(0) is None
    assert apns_payload.expiration(1_700_000_000_000) == "1700000000"
    assert apns_payload.expiration(1_700_000_000_001) == "1700000001"


def test_collapse_ids_fit_64_bytes() -> None:
    assert apns_payload.collapse_id("") is None
    exact = "k" * 64
    assert apns_payload.collapse_id(exact) == exact
    long = apns_payload.collapse_id("k" * 65)
    assert long is not None
    assert len(long.encode()) == 64
    assert long != apns_payload.collapse_id("k" * 66)


def test_headers() -> None:
    pushed = row(collapse_key="c", expires_at_ms=2_000_000_000_000, severity=Severity.INFO)
    assert apns_payload.headers(pushed, TOKEN, "com.example.app") == {
        "apns-topic": "com.example.app",
        "apns-push-type": "alert",
        "apns-priority": "5",
        "apns-id": apns_payload.message_id(pushed.id, TOKEN),
        "apns-expiration": "2000000000",
        "apns-collapse-id": "c",
    }


def test_only_a_primary_action_gives_the_url_and_a_long_subject_is_hashed_as_thread_id() -> None:
    pushed = row(
        actions=(Action("a", "A", "/a"), Action("b", "B", "/b", primary=True)), text="s" * 100
    )
    body = decoded(payload(pushed))
    assert body["url"] == "/b"
    assert len(body["aps"]["thread-id"]) == 64
    assert "url" not in decoded(payload(row(actions=(Action("a", "A", "/a"),))))


def test_a_payload_that_fits_is_sent_whole() -> None:
    pushed = row(body="x" * 3000, data='{"k": 1}')
    assert decoded(payload(pushed))["aps"]["alert"]["body"] == "x" * 3000
    assert decoded(payload(pushed))["data"] == {"k": 1}


def test_data_gives_way_before_the_body() -> None:
    pushed = row(body="x" * 2000, data='{"k": "' + "y" * 2500 + '"}')
    body = decoded(payload(pushed))
    assert body["aps"]["alert"]["body"] == "x" * 2000
    assert "data" not in body


@pytest.mark.parametrize("unit", ["a", "é", "漢", "🚀", '"', "\n", "\u0001"])
def test_a_long_body_is_cut_to_the_longest_prefix_that_fits(unit: str) -> None:
    text = unit * 10_000
    pushed = row(body=text, image_url="https://cdn.example/i.png")
    sent = payload(pushed)
    assert len(sent) <= MAX_PAYLOAD_BYTES
    cut = decoded(sent)["aps"]["alert"]["body"]
    assert cut.endswith("…")
    assert text.startswith(cut[:-1])
    assert decoded(sent)["image"] == "https://cdn.example/i.png"
    # One more character would not have fitted.
    longer = row(body=text[: len(cut)] + "…", image_url="https://cdn.example/i.png")
    longer.id = pushed.id
    assert len(payload(longer, limit=10**6)) > MAX_PAYLOAD_BYTES


def test_when_the_body_has_no_room_the_image_then_the_url_go_and_at_last_the_title_is_cut() -> None:
    url, image = "https://app.example/" + "u" * 1500, "https://cdn.example/" + "i" * 1500
    actions = (Action("open", "Open", url, primary=True),)
    # Title and url fit together, the image does not: it goes, and the body fills the rest.
    sent = payload(row(title="t" * 2000, body="b" * 1000, actions=actions, image_url=image))
    body = decoded(sent)
    assert body["aps"]["alert"]["title"] == "t" * 2000
    assert body["aps"]["alert"]["body"].endswith("…")
    assert (body["url"], "image" in body) == (url, False)
    assert MAX_PAYLOAD_BYTES - 4 <= len(sent) <= MAX_PAYLOAD_BYTES
    # A title that fills the payload alone is cut, and every extra goes.
    title = "漢" * 4096  # 12 KiB
    sent = payload(row(title=title, body="b", actions=actions, image_url=image))
    body = decoded(sent)
    assert len(sent) <= MAX_PAYLOAD_BYTES
    assert body["aps"]["alert"]["title"].endswith("…")
    assert "body" not in body["aps"]["alert"]
    assert "url" not in body
    assert "image" not in body
    assert body["aps"]["mutable-content"] == 1  # the app can still fetch the row by id


def test_a_smaller_limit_is_honoured() -> None:
    sent = payload(row(body="z" * 1000), limit=300)
    assert len(sent) <= 300
    assert decoded(sent)["aps"]["alert"]["body"].endswith("…")
