"""The APNs provider token: an ES256 JWT signed with the team's ``.p8`` key.

APNs accepts a token for one hour from its ``iat`` and answers
``TooManyProviderTokenUpdates`` to a provider that makes new ones too often
(more than about once every 20 minutes), so one token is shared by every push
and replaced when it is 50 minutes old, by the injected clock. When APNs
still calls a token expired (``ExpiredProviderToken``: the clocks disagree,
or the process slept), ``renew`` makes a new one at once, but only if the
rejected token is still the current one (many pushes in flight get the same
answer; one new token serves them all) and at most once a minute, so a clock
that stays wrong cannot turn every push into a token update.

The key and the tokens never leave this object: it has no repr with either,
and nothing here logs them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.core.clock import Clock

# Replace the token when it is this old: inside APNs' one hour, outside its 20-minute floor.
REFRESH_AFTER_S = 50 * 60
# The soonest a rejected token is replaced again after a forced renewal.
MIN_RENEW_INTERVAL_S = 60

logger = logging.getLogger("notify.delivery.apns")


class SigningKeyError(ValueError):
    """The ``.p8`` file cannot be used; the message never quotes the file."""


def load_signing_key(path: str) -> ec.EllipticCurvePrivateKey:
    """Reads an APNs auth key (PKCS#8 PEM, EC P-256) as Apple's developer site issues it."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningKeyError(
            f"cannot read {path!r} ({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(
            f"{path!r} is not an unencrypted PEM private key (the .p8 file from Apple)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningKeyError(f"{path!r} is not an EC P-256 key (APNs signs with ES256)")
    return key


class ProviderToken:
    """Makes, caches and renews the bearer token every APNs request carries."""

    __slots__ = ("_clock", "_issued_ms", "_key", "_key_id", "_last_renew_ms", "_team_id", "_token")

    def __init__(
        self, key: ec.EllipticCurvePrivateKey, key_id: str, team_id: str, clock: Clock
    ) -> None:
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._clock = clock
        self._token = ""
        self._issued_ms = 0
        self._last_renew_ms: int | None = None

    def __repr__(self) -> str:
        return f"ProviderToken(key_id={self._key_id!r}, team_id={self._team_id!r})"

    def current(self) -> str:
        """The token to send now: the cached one while it is younger than 50 minutes."""
        now_ms = self._clock.now_ms()
        age_ms = now_ms - self._issued_ms
        # A wall clock stepped back makes the token look issued in the future: replace it too.
        if not self._token or age_ms >= REFRESH_AFTER_S * 1000 or age_ms < 0:
            self._issue(now_ms, "age" if self._token else "first")
        return self._token

    def renew(self, rejected: str) -> str:
        """After ``ExpiredProviderToken`` for ``rejected``: the token to retry with."""
        now_ms = self._clock.now_ms()
        recently = (
            self._last_renew_ms is not None
            and 0 <= now_ms - self._last_renew_ms < MIN_RENEW_INTERVAL_S * 1000
        )
        if rejected == self._token and not recently:
            self._last_renew_ms = now_ms
            self._issue(now_ms, "expired")
        return self.current()

    def _issue(self, now_ms: int, why: str) -> None:
        self._token = jwt.encode(
            {"iss": self._team_id, "iat": now_ms // 1000},
            self._key,
            algorithm="ES256",
            headers={"kid": self._key_id},
        )
        self._issued_ms = now_ms
        logger.debug("APNs provider token issued", extra={"why": why, "kid": self._key_id})
