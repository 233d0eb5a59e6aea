"""Credentials: who is calling.

Client port: ``Authorization: Bearer <JWT>``, verified with an HMAC secret
(HS256), public keys from a PEM file, or the identity provider's JWKS (RS256,
ES256, EdDSA, ...), each key pinned to its own algorithms (see notify.keys);
optional pinned ``iss``/``aud``, a clock leeway. In dev mode also
``Bearer dev:<user>:<tenant>[:<email>]``. Internal port: the
``X-Notify-Internal-Token`` header compared in constant time.

Refusals say what is wrong with a token (expired, not valid yet, no ``exp``)
only once its signature has checked out, so they tell a forger nothing.
"""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from notify.config import ASYMMETRIC_ALGORITHMS, Config
from notify.core.errors import Unauthenticated
from notify.jwks import JWKSCache, JWKSError
from notify.keys import VerificationKey, load_pem_file, secret_key

_BEARER = "bearer "
_DEV_PREFIX = "dev:"
_MAX_CREDENTIAL_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller on the client port."""

    tenant_id: str
    user_id: str
    email: str = ""


UNKNOWN_KID = "token signing key (kid) is not known"


class _UnknownSigningKey(Exception):
    """The token names a ``kid`` the cached JWKS does not hold (yet); never leaves this module."""


class AuthStartupError(Exception):
    """The keys could not be loaded at start; the message is one line for the operator."""


class ClientAuthenticator:
    """Turns the client port's Authorization header into a Principal.

    ``authenticate`` is synchronous and never touches the network: with a
    JWKS URL it reads the cache that ``prepare`` filled at start. A token
    naming an unknown ``kid`` starts a background refresh (rate-limited) and
    is refused; ``authenticate_async`` instead waits for that refresh, so
    the first token signed with a freshly rotated key is accepted.
    """

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.monotonic) -> None:
        accepted = config.jwt_algorithms
        self._static: list[VerificationKey] = []
        if config.jwt_secret:
            secret = secret_key(config.jwt_secret, accepted)
            if secret is not None:
                self._static.append(secret)
        if config.jwt_public_key_file:
            self._static.extend(load_pem_file(config.jwt_public_key_file, accepted))
        self._jwks = (
            JWKSCache(config.jwt_jwks_url, accepted, clock=clock) if config.jwt_jwks_url else None
        )
        usable = {alg for key in self._static for alg in key.algorithms}
        if self._jwks is not None:
            usable |= set(accepted or ASYMMETRIC_ALGORITHMS) & set(ASYMMETRIC_ALGORITHMS)
        self._accepted = frozenset(usable)
        self._configured = bool(self._static) or self._jwks is not None
        self._issuer = config.jwt_issuer or None
        self._audience = config.jwt_audience or None
        self._leeway = config.jwt_leeway
        self._dev_mode = config.dev_mode

    @property
    def jwks(self) -> JWKSCache | None:
        return self._jwks

    async def prepare(self) -> None:
        """Fetches the JWKS once before the port opens, so the first tokens verify."""
        if self._jwks is None:
            return
        try:
            await self._jwks.refresh()
        except JWKSError as exc:
            raise AuthStartupError(
                f"cannot load NOTIFY_AUTH_JWT_JWKS_URL ({self._jwks.url}): {exc}"
            ) from None

    async def close(self) -> None:
        if self._jwks is not None:
            await self._jwks.close()

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
        if not self._configured:
            raise Unauthenticated("JWT authentication is not configured")
        try:
            return self._jwt_principal(token)
        except _UnknownSigningKey:
            raise Unauthenticated(UNKNOWN_KID) from None

    async def authenticate_async(self, authorization: str | None) -> Principal:
        """As authenticate, but an unknown ``kid`` waits for one JWKS refresh (rate-limited)."""
        try:
            return self.authenticate(authorization)
        except Unauthenticated as exc:
            if exc.message != UNKNOWN_KID or self._jwks is None:
                raise
            if not await self._jwks.refresh_for_unknown_kid():
                raise
        return self.authenticate(authorization)

    def _candidates(self, token: str) -> tuple[str, list[VerificationKey]]:
        header = _unverified_header(token)
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in self._accepted:
            raise Unauthenticated("token algorithm is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise Unauthenticated("token is invalid")
        keys = [key for key in self._static if algorithm in key.algorithms]
        if self._jwks is not None:
            keys += self._jwks.matching(kid, algorithm)
            if not keys and kid is not None and not self._jwks.knows(kid):
                self._jwks.refresh_soon()
                raise _UnknownSigningKey
        if not keys:
            raise Unauthenticated("token algorithm does not match its key")
        return algorithm, keys

    def _jwt_principal(self, token: str) -> Principal:
        algorithm, keys = self._candidates(token)
        claims = self._verified_claims(token, algorithm, keys)
        user_id = claims.get("sub")
        tenant_id = claims.get("tenant") or claims.get("tenant_id")
        if not isinstance(user_id, str) or not user_id:
            raise Unauthenticated("token has no subject")
        if not isinstance(tenant_id, str) or not tenant_id:
            raise Unauthenticated("token has no tenant claim")
        email = claims.get("email")
        return Principal(tenant_id, user_id, email if isinstance(email, str) else "")

    def _verified_claims(
        self, token: str, algorithm: str, keys: list[VerificationKey]
    ) -> dict[str, Any]:
        for key in keys:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=[
                        algorithm
                    ],  # the one this key is pinned to, never a list to pick from
                    issuer=self._issuer,
                    audience=self._audience,
                    leeway=self._leeway,
                    options={
                        "require": ["sub", "exp"],
                        # An unset NOTIFY_AUTH_JWT_AUDIENCE means aud is not checked,
                        # not that every token carrying one is refused.
                        "verify_aud": self._audience is not None,
                    },
                )
            except jwt.InvalidSignatureError:
                continue  # maybe the next key (a rotation overlap); claims come after signatures
            except jwt.ExpiredSignatureError:
                raise Unauthenticated("token has expired") from None
            except jwt.ImmatureSignatureError:
                raise Unauthenticated(
                    "token is not valid yet (nbf or iat is in the future)"
                ) from None
            except jwt.MissingRequiredClaimError as exc:
                if exc.claim == "exp":
                    raise Unauthenticated(
                        "token has no exp claim (an expiry is required)"
                    ) from None
                raise Unauthenticated(f"token has no {exc.claim} claim") from None
            except jwt.InvalidIssuerError:
                raise Unauthenticated("token issuer is not accepted") from None
            except jwt.InvalidAudienceError:
                raise Unauthenticated("token audience is not accepted") from None
            except jwt.InvalidTokenError:
                raise Unauthenticated("token is invalid") from None
        raise Unauthenticated("token is invalid")


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, only to pick the key; pyjwt parses it again when it verifies.

    A third of pyjwt's get_unverified_header cost, which also decodes the
    payload and signature the hot path does not need yet.
    """
    encoded = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, TypeError):
        raise Unauthenticated("token is invalid") from None
    if not isinstance(header, dict) or token.count(".") != 2:
        raise Unauthenticated("token is invalid")
    return header


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
