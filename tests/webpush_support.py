"""A Web Push service on loopback that verifies every push as a real one must.

``PushService`` is an HTTP/1.1 server on 127.0.0.1 (a free port) standing in
for a browser vendor's push service. Each ``Browser`` it hands out is a
subscription the test generates (a P-256 key pair and a 16-byte auth secret,
as a browser would) with an endpoint on this server, made with one VAPID
public key (the ``applicationServerKey``). For every POST the service checks
what RFC 8030/8291/8292 demand and refuses what fails:

- ``Authorization: vapid t=<JWT>,k=<key>``: ``k`` is the key the subscription
  was made with (else 403, the "wrong VAPID key" case), the JWT is ES256 and
  verifies with it (pyjwt), ``aud`` is this origin, ``exp`` is in the future
  and at most 24 h away, ``sub`` is a ``mailto:`` or ``https:`` contact;
- ``Content-Encoding: aes128gcm``, a numeric ``TTL``, a valid ``Urgency``, a
  ``Topic`` (when sent) of at most 32 base64url characters;
- the body decrypts (http_ece) with the browser's private key and auth secret.

A push that passes is kept as a ``Push`` (headers and the decrypted JSON) and
answered from ``script`` ((status, headers) pairs), then 201 with a Location.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.core.subscription import b64url, b64url_decode
from tests.http_stub import loopback_server

URGENCIES = ("very-low", "low", "normal", "high")
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 section 5.4


@dataclass
class Browser:
    """One subscription: what a browser's pushManager.subscribe() would make."""

    path: str
    server_key: str  # the applicationServerKey it subscribed with (base64url)
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    endpoint: str = ""

    def subscription(self) -> dict[str, Any]:
        """PushSubscription.toJSON()"""
        p256dh = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url(p256dh), "auth": b64url(self.auth)},
        }

    def token(self) -> str:
        return json.dumps(self.subscription())


@dataclass
class Push:
    browser: Browser
    headers: dict[str, str]
    claims: dict[str, Any]
    message: dict[str, Any]


@dataclass
class PushService:
    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    received: list[Push] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)  # why, per refused push
    attempts: int = 0
    port: int = 0
    browsers: dict[str, Browser] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def browser(self, server_key: str) -> Browser:
        """A new subscription on this service, made with ``server_key``."""
        path = f"/push/{len(self.browsers)}-{os.urandom(6).hex()}"
        made = Browser(path, server_key, endpoint=self.origin + path)
        self.browsers[path] = made
        return made

    async def wait_for(self, count: int) -> None:
        """Until ``count`` pushes have been accepted."""
        while len(self.received) < count:
            self.arrived.clear()
            await self.arrived.wait()

    async def wait_attempts(self, count: int) -> None:
        """Until ``count`` pushes have been answered, whatever the answer."""
        while self.attempts < count:
            self.answered.clear()
            await self.answered.wait()

    def _check(self, browser: Browser, headers: dict[str, str], body: bytes) -> Push:
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            raise Refused(401, "no vapid Authorization")
        parts = dict(p.strip().split("=", 1) for p in credentials.split(",") if "=" in p)
        if parts.get("k") != browser.server_key:
            raise Refused(403, "VAPID key is not the subscription's applicationServerKey")
        public = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(parts["k"])
        )
        try:
            claims = jwt.decode(
                parts.get("t", ""),
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["exp", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise Refused(403, f"VAPID JWT: {exc}") from None
        if not 0 < claims["exp"] - time.time() <= 24 * 3600:
            raise Refused(403, "VAPID exp more than 24 h away")
        if not str(claims["sub"]).startswith(("mailto:", "https:")):
            raise Refused(403, "VAPID sub is not mailto: or https:")
        if headers.get("content-encoding") != "aes128gcm":
            raise Refused(400, "Content-Encoding is not aes128gcm")
        if not headers.get("ttl", "").isdigit():
            raise Refused(400, "TTL missing")
        if headers.get("urgency", "normal") not in URGENCIES:
            raise Refused(400, "bad Urgency")
        if "topic" in headers and not TOPIC.fullmatch(headers["topic"]):
            raise Refused(400, "Topic is not 1-32 base64url characters")
        if len(body) > 4096:
            raise Refused(413, "over 4096 bytes")
        try:
            plain = http_ece.decrypt(
                body, private_key=browser.key, auth_secret=browser.auth, version="aes128gcm"
            )
        except Exception as exc:
            raise Refused(400, f"does not decrypt: {type(exc).__name__}") from None
        return Push(browser, headers, claims, json.loads(plain))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            _, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.attempts += 1
            status, extra = 201, {"location": f"{self.origin}/message/{self.attempts}"}
            browser = self.browsers.get(path)
            try:
                if browser is None:
                    raise Refused(404, "no such subscription")
                push = self._check(browser, headers, body)
            except Refused as refused:
                status, extra = refused.status, {}
                self.rejected.append(refused.why)
            else:
                if self.script:
                    status, extra = self.script.popleft()
                if 200 <= status < 300:
                    self.received.append(push)
                    self.arrived.set()
            extra_lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n"
                f"{extra_lines}\r\n".encode()
            )
            await writer.drain()
            self.answered.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class Refused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


@asynccontextmanager
async def push_service(service: PushService) -> AsyncIterator[PushService]:
    async with loopback_server(service.handle) as port:
        service.port = port
        yield service
