"""The Web Push ``Topic`` a row's collapse key becomes (RFC 8030 section 5.4: at most 32
characters of the base64url alphabet, or the push service refuses the push)."""

from __future__ import annotations

import re

from notify.delivery.webpush import topic

RFC_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


def test_no_collapse_key_sends_no_topic() -> None:
    assert topic("") is None


def test_a_key_the_rfc_allows_is_the_topic_itself() -> None:
    assert topic("deploy-api_1") == "deploy-api_1"
    assert topic("x" * 32) == "x" * 32


def test_any_other_key_becomes_a_stable_hash_within_the_limit() -> None:
    keys = ["builds:api", "x" * 33, "über", "a b", "deploy/api"]
    topics = [topic(key) for key in keys]
    for made in topics:
        assert made is not None
        assert RFC_TOPIC.fullmatch(made)
        assert len(made) == 32
    assert len(set(topics)) == len(keys)  # distinct keys, distinct topics
    assert topic("builds:api") == topics[0]  # the same key, the same topic
