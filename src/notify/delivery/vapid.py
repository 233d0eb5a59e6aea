"""VAPID (RFC 8292): the signed header every push carries.

The key itself is read and checked by ``notify.core.vapidkeys``. A push
service accepts a push only when its ``Authorization: vapid t=<JWT>,k=<key>``
is signed by the key the subscription was made with.

The JWT (ES256, signed by py_vapid) names the push service's origin (``aud``),
the operator's contact (``sub``, ``mailto:`` or ``https:``) and an expiry at
most 24 hours ahead (``exp``). One header per push service origin is kept and
re-signed once half its lifetime has passed, so a burst of pushes signs once.
Nothing here ever puts the private key in a message or an exception.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from notify.core.clock import Clock
from notify.core.vapidkeys import check_subject, public_key_b64url

# RFC 8292 allows at most 24 hours; 12 leaves room for clock skew at the push service.
TOKEN_LIFETIME_S = 12 * 3600


class VapidSigner:
    """The ``Authorization`` header for a push service origin, signed and cached."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        subject: str,
        clock: Clock,
        *,
        lifetime_s: int = TOKEN_LIFETIME_S,
    ) -> None:
        self._vapid = Vapid02(key)
        self._subject = check_subject(subject)
        self._clock = clock
        self._lifetime_s = lifetime_s
        self.public_key = public_key_b64url(key)
        self._cache: dict[str, tuple[int, str]] = {}  # audience -> (exp, header)

    def authorization(self, audience: str) -> str:
        now_s = self._clock.now_ms() // 1000
        cached = self._cache.get(audience)
        if cached is not None and cached[0] - now_s > self._lifetime_s // 2:
            return cached[1]
        exp = now_s + self._lifetime_s
        claims = {"aud": audience, "sub": self._subject, "exp": exp}
        header = str(self._vapid.sign(claims)["Authorization"])
        if len(self._cache) >= 1024:  # push services are few; never grow without bound
            self._cache.clear()
        self._cache[audience] = (exp, header)
        return header
