"""Errors map to codes by class, so a subclass maps like its parent."""

from __future__ import annotations

from connectrpc.code import Code

from notify.api.errors import to_connect_error
from notify.core import errors


class QuotaExceeded(errors.ResourceExhausted):
    """A service-specific error, defined after the mapping was written."""


def test_subclasses_map_like_their_parent() -> None:
    mapped = to_connect_error(QuotaExceeded("slow down"))
    assert mapped.code is Code.RESOURCE_EXHAUSTED
    assert mapped.message == "slow down"


def test_every_error_class_has_its_code() -> None:
    expected = {
        errors.InvalidArgument: Code.INVALID_ARGUMENT,
        errors.NotFound: Code.NOT_FOUND,
        errors.Unauthenticated: Code.UNAUTHENTICATED,
        errors.Unavailable: Code.UNAVAILABLE,
        errors.ResourceExhausted: Code.RESOURCE_EXHAUSTED,
        errors.OutOfRange: Code.OUT_OF_RANGE,
        errors.Unimplemented: Code.UNIMPLEMENTED,
    }
    for cls, code in expected.items():
        assert to_connect_error(cls("x")).code is code
    assert to_connect_error(TimeoutError()).code is Code.DEADLINE_EXCEEDED


def test_anything_else_is_internal_without_its_text() -> None:
    mapped = to_connect_error(KeyError("secret internals"))
    assert mapped.code is Code.INTERNAL
    assert "secret" not in mapped.message
