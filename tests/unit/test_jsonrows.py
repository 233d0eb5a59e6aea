"""The JSON fast path writes exactly what the protobuf path writes."""

from __future__ import annotations

import random

import orjson
from elloloop.notify.v1 import notify_pb2 as pb

from notify.core.ids import new_id
from notify.core.model import Action, Channel, Counts, Notification, Severity, Status
from notify.wire import fastjson, jsonrows
from notify.wire.convert import counts_to_pb, notification_to_pb

TEXT = ["", "a", "ünï 日本 🎉", 'q"uote\\', "line\nbreak", "\u2028"]


def random_row(rng: random.Random) -> Notification:
    data = rng.choice(
        [
            {},
            {"n": 1, "f": 2.5, "neg": -0.5, "big": 1e300},
            {"nested": {"list": [1, "two", None, True, {"deep": []}]}, "u": "ünï"},
        ]
    )
    return Notification(
        id=new_id(rng.randrange(1, 2**40)),
        tenant_id="t",
        user_id="u",
        notification_id=rng.choice(TEXT) or "n",
        channel=rng.choice(list(Channel)[1:]),
        subject_ref=rng.choice(TEXT),
        subject_type=rng.choice(TEXT),
        title=rng.choice(TEXT),
        body=rng.choice(TEXT),
        status=rng.choice(list(Status)[1:]),
        created_at_ms=rng.randrange(0, 2**62),
        delivered_at_ms=rng.choice([0, 2**53 + 1]),
        read_at_ms=rng.choice([0, 17]),
        severity=rng.choice(list(Severity)),
        category=rng.choice(["", "comments"]),
        actions=tuple(
            Action(f"a{i}", rng.choice(TEXT) or "L", "/x", rng.random() < 0.5)
            for i in range(rng.randint(0, 3))
        ),
        data=fastjson.to_json(_struct(data)).decode() if data else "",
        tags=tuple(rng.sample(["a", "b", "ç"], rng.randint(0, 3))),
        image_url=rng.choice(["", "https://x.test/a.png"]),
        expires_at_ms=rng.choice([0, 10**12]),
        seen_at_ms=rng.choice([0, 5]),
        collapse_key=rng.choice(["", "k"]),
        collapsed_count=rng.randint(0, 3),
        action_id=rng.choice(["", "a0"]),
    )


def _struct(data: dict[str, object]) -> object:
    from google.protobuf.struct_pb2 import Struct

    struct = Struct()
    struct.update(data)
    return struct


def test_rows_encode_like_the_protobuf_path() -> None:
    rng = random.Random(20261201)
    for _ in range(500):
        row = random_row(rng)
        fast = orjson.loads(orjson.dumps(jsonrows.row_json(row)))
        slow = orjson.loads(fastjson.to_json(notification_to_pb(row)))
        assert fast == slow


def test_a_page_encodes_like_the_protobuf_path() -> None:
    rng = random.Random(7)
    rows = [random_row(rng) for _ in range(20)]
    counts = Counts(unread=3, unseen=2, total=20)
    fast = orjson.loads(jsonrows.page_json(rows, "next", counts))
    slow = orjson.loads(
        fastjson.to_json(
            pb.GetNotificationsResponse(
                notifications=[notification_to_pb(r) for r in rows],
                next_cursor="next",
                unread_count=3,
                counts=counts_to_pb(counts),
            )
        )
    )
    assert fast == slow
    empty = orjson.loads(jsonrows.page_json([], "", Counts()))
    assert empty == orjson.loads(
        fastjson.to_json(pb.GetNotificationsResponse(counts=counts_to_pb(Counts())))
    )
