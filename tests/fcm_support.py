"""Stand-ins for Google's OAuth token endpoint and the FCM HTTP v1 send endpoint.

The token endpoint verifies the service account's RS256 assertion with the
public half of the key the test generated (signature, ``kid``, ``iss``,
``aud``, ``scope``, lifetime) and issues opaque tokens that expire by the
test's clock. The send endpoint takes only a live token it issued, checks
the message against the shape FCM accepts (fields, string-only data, TTL
format, 4096-byte payload) and answers from a script or by the token's fate
(unregistered, invalid), the way FCM does.
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notify.core.clock import ManualClock
from tests.http_stub import Answer, Request, http_server

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
PROJECT = "notify-test-project"
CLIENT_EMAIL = "notify-push@notify-test-project.iam.gserviceaccount.com"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    key: rsa.RSAPrivateKey
    key_id: str

    @classmethod
    def generate(cls) -> ServiceAccountKey:
        return cls(rsa.generate_private_key(65537, 2048), secrets.token_hex(20))

    @property
    def private_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def write(self, path: Path, token_uri: str, **override: Any) -> Path:
        """A credentials file shaped like the one the Firebase console downloads."""
        document = {
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": self.key_id,
            "private_key": self.private_pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "104211234567890123456",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "universe_domain": "googleapis.com",
        }
        document.update(override)
        path.write_bytes(orjson.dumps({k: v for k, v in document.items() if v is not None}))
        # (None leaves a field out; "" writes it empty.)
        return path


def _json(status: int, body: Any, **headers: str) -> Answer:
    return status, {"content-type": "application/json", **headers}, orjson.dumps(body)


def fcm_error(status: int, canonical: str, message: str, **detail: Any) -> Answer:
    """An error body as FCM writes it (google.rpc.Status with an FcmError detail)."""
    details: list[dict[str, Any]] = []
    if "error_code" in detail:
        details.append({"@type": FCM_ERROR, "errorCode": detail["error_code"]})
    if "field" in detail:
        details.append(
            {
                "@type": BAD_REQUEST,
                "fieldViolations": [{"field": detail["field"], "description": message}],
            }
        )
    headers = {"retry-after": detail["retry_after"]} if "retry_after" in detail else {}
    error = {"code": status, "message": message, "status": canonical, "details": details}
    return _json(status, {"error": error}, **headers)


@dataclass
class OAuthServer:
    """Verifies assertions signed by ``key`` and issues tokens living ``expires_in`` seconds."""

    key: ServiceAccountKey
    clock: ManualClock
    expires_in: int = 3600
    script: deque[Answer] = field(default_factory=deque)
    issued: dict[str, int] = field(default_factory=dict)  # token -> expiry (ms)
    refused: list[str] = field(default_factory=list)
    requests: int = 0
    url: str = ""

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def exchanges(self) -> int:
        return len(self.issued)

    def live(self, token: str) -> bool:
        expiry = self.issued.get(token)
        return expiry is not None and self.clock.now_ms() < expiry

    async def handle(self, request: Request) -> Answer:
        self.requests += 1
        if (request.method, request.path) != ("POST", "/token"):
            return _json(404, {"error": "not_found"})
        if self.script:
            return self.script.popleft()
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            return self._refuse("invalid_request", "not a form")
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self._refuse("unsupported_grant_type", "grant_type")
        problem = self._check(form.get("assertion", ""))
        if problem:
            return self._refuse("invalid_grant", problem)
        token = f"ya29.test-{secrets.token_urlsafe(24)}"
        self.issued[token] = self.clock.now_ms() + self.expires_in * 1000
        return _json(
            200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}
        )

    def _check(self, assertion: str) -> str:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.key.key.public_key(),
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=CLIENT_EMAIL,
                # Lifetimes are checked below against the test's clock.
                options={"verify_exp": False, "verify_iat": False, "require": ["exp", "iat"]},
            )
        except jwt.PyJWTError as exc:
            return f"Invalid JWT: {type(exc).__name__}"
        now_s = self.clock.now_ms() // 1000
        if header.get("alg") != "RS256" or header.get("kid") != self.key.key_id:
            return "wrong alg or kid"
        if claims.get("scope") != SCOPE:
            return "wrong scope"
        if not claims["iat"] - 60 <= now_s < claims["exp"] or claims["exp"] - claims["iat"] > 3600:
            return "Invalid JWT: token must be a short-lived token and in a reasonable timeframe"
        return ""

    def _refuse(self, error: str, description: str) -> Answer:
        self.refused.append(description)
        return _json(400, {"error": error, "error_description": description})


_MESSAGE_KEYS = {"token", "notification", "data", "android"}
_NOTIFICATION_KEYS = {"title", "body", "image"}
_ANDROID_KEYS = {"priority", "ttl", "collapse_key", "notification"}
_TTL = re.compile(r"\d+(\.\d{1,9})?s")
# FCM refuses these; the Android SDK's RemoteMessage.getData() drops collapse_key too.
_RESERVED = ("from", "notification", "message_type", "collapse_key")


def shape_problems(body: Any) -> list[str]:
    """What FCM would refuse as INVALID_ARGUMENT in a messages:send body."""
    if not isinstance(body, dict) or set(body) != {"message"}:
        return ["the body must be {'message': ...}"]
    msg = body["message"]
    problems = [f"unknown message field {k}" for k in set(msg) - _MESSAGE_KEYS]
    if not isinstance(msg.get("token"), str) or not msg["token"]:
        problems.append("message.token missing")
    notification = msg.get("notification", {})
    problems += [f"unknown notification field {k}" for k in set(notification) - _NOTIFICATION_KEYS]
    problems += [
        f"notification.{k} not a string" for k, v in notification.items() if not isinstance(v, str)
    ]
    for key, value in msg.get("data", {}).items():
        if not isinstance(value, str):
            problems.append(f"data.{key} is not a string")
        if key in _RESERVED or key.startswith(("google", "gcm")):
            problems.append(f"data.{key} is reserved")
    android = msg.get("android", {})
    problems += [f"unknown android field {k}" for k in set(android) - _ANDROID_KEYS]
    if android.get("priority", "normal").lower() not in ("normal", "high"):
        problems.append("android.priority")
    if "ttl" in android and not _TTL.fullmatch(android["ttl"]):
        problems.append("android.ttl is not a Duration")
    if set(android.get("notification", {})) - {"tag"}:
        problems.append("android.notification field")
    if len(orjson.dumps(body)) > 4096:
        problems.append("Message is too big")
    return problems


@dataclass
class FcmServer:
    """``/v1/projects/{PROJECT}/messages:send`` for bearers ``oauth`` issued and still live."""

    oauth: OAuthServer
    script: deque[Answer] = field(default_factory=deque)
    gone: set[str] = field(default_factory=set)  # UNREGISTERED
    invalid: set[str] = field(default_factory=set)  # INVALID_ARGUMENT on message.token
    revoked: set[str] = field(default_factory=set)
    reject_every_token: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)
    bearers: list[str] = field(default_factory=list)
    attempts: int = 0
    unauthorized: int = 0
    url: str = ""

    def revoke_all(self) -> None:
        self.revoked |= set(self.oauth.issued)

    async def handle(self, request: Request) -> Answer:
        self.attempts += 1
        if (request.method, request.path) != ("POST", f"/v1/projects/{PROJECT}/messages:send"):
            return fcm_error(404, "NOT_FOUND", "no such method")
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.reject_every_token or bearer in self.revoked or not self.oauth.live(bearer):
            self.unauthorized += 1
            return fcm_error(
                401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
            )
        self.bearers.append(bearer)
        if not request.headers.get("content-type", "").startswith("application/json"):
            return fcm_error(400, "INVALID_ARGUMENT", "not JSON")
        body = orjson.loads(request.body)
        problems = shape_problems(body)
        if problems:
            return fcm_error(
                400, "INVALID_ARGUMENT", "; ".join(problems), error_code="INVALID_ARGUMENT"
            )
        if self.script:
            return self.script.popleft()
        token = body["message"]["token"]
        if token in self.gone:
            return fcm_error(
                404, "NOT_FOUND", "Requested entity was not found.", error_code="UNREGISTERED"
            )
        if token in self.invalid:
            return fcm_error(
                400,
                "INVALID_ARGUMENT",
                "The registration token is not a valid FCM registration token",
                error_code="INVALID_ARGUMENT",
                field="message.token",
            )
        self.messages.append(body["message"])
        return _json(200, {"name": f"projects/{PROJECT}/messages/{len(self.messages)}"})


@asynccontextmanager
async def google(clock: ManualClock, key: ServiceAccountKey) -> AsyncIterator[FcmServer]:
    """The token endpoint and the send endpoint, each on its own free port."""
    oauth = OAuthServer(key, clock)
    fcm = FcmServer(oauth)
    async with http_server(oauth.handle) as oauth_url, http_server(fcm.handle) as fcm_url:
        oauth.url, fcm.url = oauth_url, fcm_url
        yield fcm
