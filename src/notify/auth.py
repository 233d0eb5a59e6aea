"""Credentials: who is calling.

Client port: ``Authorization: Bearer <JWT>`` (HS256 with a shared secret,
optional pinned ``iss``/``aud``, a clock leeway); in dev mode also
``Bearer dev:<user>:<tenant>[:<email>]``. Internal port: the
``X-Notify-Internal-Token`` header compared in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import jwt

from notify.config import Config
from notify.core.errors import Unauthenticated

_BEARER = "bearer "
_DEV_PREFIX = "dev:"
_MAX_CREDENTIAL_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller on the client port."""

    tenant_id: str
    user_id: str
    email: str = ""


class ClientAuthenticator:
    def __init__(self, config: Config) -> None:
        self._secret = config.jwt_secret
        self._issuer = config.jwt_issuer or None
        self._audience = config.jwt_audience or None
        self._leeway = config.jwt_leeway
        self._dev_mode = config.dev_mode

    def authenticate(self, authorization: str | None) -> Principal:
        """Turns an Authorization header into a Principal or raises Unauthenticated."""
        if not authorization:
            raise Unauthenticated("missing Authorization header (Bearer token)")
        if len(authorization) > _MAX_CREDENTIAL_LENGTH:
            raise Unauthenticated("Authorization header is too long")
        if authorization[: len(_BEARER)].lower() != _BEARER:
            raise Unauthenticated("Authorization header must be 'Bearer <token>'")
        token = authorization[len(_BEARER) :].strip()
        if token.startswith(_DEV_PREFIX):
            if not self._dev_mode:
                raise Unauthenticated("dev tokens are accepted only in dev mode")
            return _dev_principal(token)
        if not self._secret:
            raise Unauthenticated("JWT authentication is not configured")
        return self._jwt_principal(token)

    def _jwt_principal(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token has expired") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token issuer is not accepted") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token audience is not accepted") from None
        except jwt.InvalidTokenError:
            raise Unauthenticated("token is invalid") from None
        user_id = claims.get("sub")
        tenant_id = claims.get("tenant") or claims.get("tenant_id")
        if not isinstance(user_id, str) or not user_id:
            raise Unauthenticated("token has no subject")
        if not isinstance(tenant_id, str) or not tenant_id:
            raise Unauthenticated("token has no tenant claim")
        email = claims.get("email")
        return Principal(tenant_id, user_id, email if isinstance(email, str) else "")


def _dev_principal(token: str) -> Principal:
    parts = token[len(_DEV_PREFIX) :].split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise Unauthenticated("dev token must be 'dev:<userid>:<tenant>[:<email>]'")
    return Principal(
        tenant_id=parts[1], user_id=parts[0], email=parts[2] if len(parts) == 3 else ""
    )


class InternalAuthenticator:
    """Guards the internal port with a shared token, compared in constant time."""

    def __init__(self, config: Config) -> None:
        self._token = config.internal_token.encode()
        self._skip = config.dev_mode

    def check(self, presented: str | None) -> None:
        if self._skip:
            return
        if not presented:
            raise Unauthenticated("missing X-Notify-Internal-Token header")
        if not hmac.compare_digest(presented.encode(), self._token):
            raise Unauthenticated("X-Notify-Internal-Token is not valid")
