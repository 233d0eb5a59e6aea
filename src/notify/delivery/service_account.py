"""Google service-account credentials and the OAuth 2.0 access tokens they buy.

FCM HTTP v1 takes a short-lived bearer token, not the key itself: the key
signs an RS256 JWT assertion (RFC 7523: ``iss`` = the account's email,
``scope``, ``aud`` = its ``token_uri``, at most an hour long), which the
token endpoint exchanges for an access token valid ``expires_in`` seconds.
``AccessTokens`` keeps that token until shortly before it runs out, fetches
one at a time however many sends wait for it, and drops a token the API
refused (a 401 mid-run) so the next call fetches a fresh one.

Neither the private key, the assertion nor an access token is ever put in a
message, a reason or an exception: errors name the HTTP status and the
endpoint's OAuth error code only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jwt
import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from notify.core.clock import Clock
from notify.delivery.outbound import json_body

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME_S = 3600  # the longest Google accepts
# A token is replaced this long before its expiry (or at half its life, if shorter),
# so a send never starts with a token that lapses on the way.
REFRESH_MARGIN_MS = 60_000
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_REQUIRED = ("project_id", "client_email", "private_key", "token_uri")


class CredentialsError(ValueError):
    """The credentials file is unusable; the message never contains the key."""


class TokenError(Exception):
    """The token endpoint did not issue a token. ``transient``: worth retrying later."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    project_id: str
    client_email: str
    token_uri: str
    # The loaded key, never its PEM text; kept out of repr.
    key: RSAPrivateKey = field(repr=False)
    private_key_id: str = ""


def secure_url(url: str) -> bool:
    """https, or http to this machine only (local test servers)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS


def load_service_account(path: str) -> ServiceAccount:
    """Reads a service-account JSON file (as the Firebase console downloads it)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise CredentialsError(f"cannot read {path!r}: {why}") from None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CredentialsError(f"{path!r} is not JSON (a service-account key file)") from None
    if not isinstance(document, dict):
        raise CredentialsError(f"{path!r} is not a service-account key file (a JSON object)")
    if document.get("type", "service_account") != "service_account":
        raise CredentialsError(f"{path!r} is not a service-account key (its type is not that)")
    missing = [n for n in _REQUIRED if not isinstance(document.get(n), str) or not document[n]]
    if missing:
        raise CredentialsError(f"{path!r} has no {', '.join(missing)}")
    token_uri = document["token_uri"]
    if not secure_url(token_uri):
        raise CredentialsError(f"{path!r}: token_uri must be https:// (http:// only to localhost)")
    try:
        key = load_pem_private_key(document["private_key"].encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CredentialsError(f"{path!r}: private_key is not a PEM private key") from None
    if not isinstance(key, RSAPrivateKey):
        raise CredentialsError(f"{path!r}: private_key is not an RSA key")
    key_id = document.get("private_key_id")
    return ServiceAccount(
        project_id=document["project_id"],
        client_email=document["client_email"],
        token_uri=token_uri,
        private_key_id=key_id if isinstance(key_id, str) else "",
        key=key,
    )


def assertion(account: ServiceAccount, scope: str, now_s: int) -> str:
    """The signed RS256 JWT the token endpoint exchanges (RFC 7523 section 2.1)."""
    headers = {"kid": account.private_key_id} if account.private_key_id else None
    claims = {
        "iss": account.client_email,
        "scope": scope,
        "aud": account.token_uri,
        "iat": now_s,
        "exp": now_s + ASSERTION_LIFETIME_S,
    }
    return jwt.encode(claims, account.key, algorithm="RS256", headers=headers)


class AccessTokens:
    """One cached access token for one scope, refreshed before it expires."""

    def __init__(
        self, account: ServiceAccount, scope: str, client: httpx.AsyncClient, clock: Clock
    ) -> None:
        self._account = account
        self._scope = scope
        self._client = client
        self._clock = clock
        self._token = ""
        self._refresh_at_ms = 0
        self._lock = asyncio.Lock()
        self._finished = 0  # fetches ended, either way
        self._error: TokenError | None = None  # how the last one failed
        self.exchanges = 0  # tokens fetched so far

    def __repr__(self) -> str:  # never the token
        return f"AccessTokens({self._account.client_email!r}, {self._scope!r})"

    async def get(self) -> str:
        """A token good for a while yet; fetched when there is none or it runs out soon."""
        if self._token and self._clock.now_ms() < self._refresh_at_ms:
            return self._token
        finished = self._finished
        async with self._lock:
            if self._token and self._clock.now_ms() < self._refresh_at_ms:
                return self._token  # another caller fetched it meanwhile
            if self._finished != finished and self._error is not None:
                # It failed while we waited: one outage costs one request, not one per send.
                raise TokenError(str(self._error), transient=self._error.transient)
            try:
                token = await self._fetch()
            except TokenError as exc:
                self._error = exc
                raise
            else:
                self._error = None
            finally:
                self._finished += 1
            return token

    def invalidate(self, token: str) -> None:
        """The API refused ``token``: the next ``get`` fetches a new one (unless it already did)."""
        if self._token == token:
            self._token = ""

    async def _fetch(self) -> str:
        now_ms = self._clock.now_ms()
        signed = assertion(self._account, self._scope, now_ms // 1000)
        try:
            response = await self._client.post(
                self._account.token_uri,
                data={"grant_type": JWT_BEARER_GRANT, "assertion": signed},
                headers={"accept": "application/json"},
            )
        except httpx.TimeoutException:
            raise TokenError("OAuth token endpoint timed out", transient=True) from None
        except httpx.HTTPError as exc:
            raise TokenError(
                f"OAuth token endpoint connection: {type(exc).__name__}", transient=True
            ) from None
        status = response.status_code
        body = json_body(response)
        if status != 200:
            code = body.get("error") if isinstance(body, dict) else None
            named = f" {code}" if isinstance(code, str) and code.isascii() else ""
            transient = status in (408, 429) or status >= 500
            raise TokenError(f"OAuth token refused: HTTP {status}{named[:80]}", transient=transient)
        token = body.get("access_token") if isinstance(body, dict) else None
        expires_in = body.get("expires_in", 3600) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
            raise TokenError("OAuth token endpoint answered without a token", transient=True)
        lifetime_ms = int(expires_in * 1000)
        self._token = token
        self._refresh_at_ms = now_ms + lifetime_ms - min(REFRESH_MARGIN_MS, lifetime_ms // 2)
        self.exchanges += 1
        return token
