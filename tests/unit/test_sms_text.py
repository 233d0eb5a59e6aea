"""Segment counting and cutting by the GSM 03.38 / UCS-2 rules, and E.164 numbers."""

from __future__ import annotations

import pytest

from notify.core.phone import e164, whatsapp_number
from notify.delivery.sms_text import (
    MAX_SEGMENTS,
    compose,
    fit_sms,
    fit_whatsapp,
    is_gsm7,
    segments,
)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 152, 3),  # the euro would straddle segments 1 and 2
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
        ("😀" * 35, 1),  # two UTF-16 units each
        ("😀" * 36, 2),
        ("a" * 159 + "😀", 3),  # one emoji makes it all UCS-2: 161 units, 67 + 67 + 27
    ],
)
def test_segments(text: str, count: int) -> None:
    assert segments(text) == count


def test_gsm7_alphabet() -> None:
    assert is_gsm7("Hello, world! @£$¥ èéùìò ÄÖÑÜ äöñü {[~]} € ^|\\")
    assert not is_gsm7("naïve")  # ï is not in the GSM alphabet
    assert not is_gsm7("smart \u2019quotes\u2019")
    assert not is_gsm7("ж")


def test_short_text_is_unchanged_and_long_text_fits_the_segment_budget() -> None:
    assert fit_sms("Deploy failed") == "Deploy failed"
    exactly = "a" * 153 * MAX_SEGMENTS
    assert fit_sms(exactly) == exactly
    for text in (
        "a" * 65536,
        "a" * 2000,
        "é " * 900,
        "€" * 900,
        "ж" * 900,
        "😀" * 900,
        "a" * 400 + "ж" * 300,
    ):
        cut = fit_sms(text)
        assert segments(cut) == MAX_SEGMENTS
        assert cut.endswith(("...", "…"))
        assert text.startswith(cut.rstrip(".…").rstrip())


def test_an_emoji_is_never_split_and_a_gsm_prefix_keeps_the_gsm_ellipsis() -> None:
    assert fit_sms("😀" * 200) == "😀" * 99 + "…"
    # The only UCS-2 character falls beyond the cut: the prefix is GSM-7 again.
    assert fit_sms("a" * 600 + "ж") == "a" * 456 + "..."
    assert fit_sms("ж" * 10, max_segments=1) == "ж" * 10


def test_whatsapp_is_cut_at_1600_characters_and_the_text_joins_title_and_body() -> None:
    assert fit_whatsapp("x" * 1600) == "x" * 1600
    assert fit_whatsapp("x" * 1601) == "x" * 1599 + "…"
    assert compose("Title", "Body") == "Title\nBody"
    assert compose("Title", "") == "Title"


@pytest.mark.parametrize("number", ["+14155550123", "+442071838750", "+8613800138000", "+3312345"])
def test_e164_numbers(number: str) -> None:
    assert e164(number) == number
    assert whatsapp_number(number) == number
    assert whatsapp_number(f"whatsapp:{number}") == number


@pytest.mark.parametrize(
    "text",
    ["", "14155550123", "+1 415 555 0123", "+1-415-555-0123", "+0123456789", "+1234567890123456",
     " +14155550123", "+14155550123\n", "tel:+14155550123", "+12345", "whatsapp:+14155550123"],
)  # fmt: skip
def test_not_e164(text: str) -> None:
    assert e164(text) is None
