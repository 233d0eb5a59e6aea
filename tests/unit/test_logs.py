"""Log lines stay one line each, whatever a caller puts into a logged value."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from notify import logs

# Every character str.splitlines() ends a line at, and a forged entry after each.
BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
HOSTILE = "".join(f'{c}{{"level":"error","msg":"forged"}}' for c in BREAKS)


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    out = io.StringIO()
    monkeypatch.setattr(logs.sys, "stderr", out)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("info")
    yield out
    root.handlers[:], _ = saved
    root.setLevel(saved[1])
    logs._handler = None


def assert_one_entry(text: str) -> dict[str, object]:
    assert text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert isinstance(entry, dict)
    return entry


def test_the_rpc_hot_path_escapes_every_line_break(stream: io.StringIO) -> None:
    logs.log_fields(logging.getLogger("notify.rpc"), "rpc", {"request_id": HOSTILE, "n": 1})
    logs.flush()
    entry = assert_one_entry(stream.getvalue())
    assert entry["request_id"] == HOSTILE
    assert "\\u2028" in stream.getvalue()
    assert "\\u0085" in stream.getvalue()


def test_ordinary_log_calls_escape_every_line_break(stream: io.StringIO) -> None:
    logging.getLogger("notify.x").warning(HOSTILE, extra={HOSTILE: HOSTILE})
    entry = assert_one_entry(stream.getvalue())
    assert entry["msg"] == HOSTILE
    assert entry[HOSTILE] == HOSTILE


def test_other_unicode_stays_readable(stream: io.StringIO) -> None:
    logging.getLogger("notify.x").warning("café ☕ 通知")
    assert '"msg":"café ☕ 通知"' in stream.getvalue()


class _Opaque:
    def __str__(self) -> str:
        return "opaque\u2028value"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("lone \udc80 surrogate", "lone \udc80 surrogate"),  # orjson refuses it
        (2**70, 2**70),  # beyond 64 bits: orjson refuses it too
        (_Opaque(), "opaque\u2028value"),  # no JSON type: str(), still one line
    ],
)
def test_a_value_orjson_cannot_write_is_still_logged(
    stream: io.StringIO, value: object, expected: object
) -> None:
    logs.log_fields(logging.getLogger("notify.rpc"), "rpc", {"value": value, "n": 1})
    logs.flush()
    entry = assert_one_entry(stream.getvalue())
    assert entry["value"] == expected
    assert entry["n"] == 1
