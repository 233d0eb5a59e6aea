"""A local APNs for the sender's tests: HTTP/2 over TLS on 127.0.0.1, served by hypercorn.

The test makes a CA and a server certificate it signs (cryptography's x509
builder), and a P-256 ``.p8`` key like Apple's. The server checks every
request the way APNs does, answering APNs' own statuses and reasons when one
is wrong: HTTP/2 only, ``POST /3/device/<hex token>``, a provider token that
is an ES256 JWT signed by the test key with the right ``kid`` and ``iss``, no
older than an hour and not replaced more often than every 20 minutes (both by
the test's clock), the topic, ``apns-push-type: alert``, the priority, the
expiration, a collapse id of at most 64 bytes, a canonical ``apns-id`` and a
JSON payload of at most 4 KiB. A request that passes gets the next scripted
answer for its device token, or 200 with its ``apns-id``.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import socket
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM123456"
TOPIC = "com.example.notify"
TOKEN_LIFETIME_S = 3600
MIN_TOKEN_REFRESH_S = 20 * 60
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PATH = re.compile(r"/3/device/([0-9a-fA-F]+)")


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True, slots=True)
class ApnsTls:
    """A CA, and a certificate for 127.0.0.1 and localhost it signed, as files."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_tls(folder: Path) -> ApnsTls:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "notify test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = ApnsTls(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    tls.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    tls.key_file.write_bytes(_pem(server_key))
    return tls


def make_p8(folder: Path) -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """An APNs auth key file as Apple hands it out (PKCS#8 PEM, P-256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = folder / f"AuthKey_{KEY_ID}.p8"
    path.write_bytes(_pem(key))
    return path, key


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Seen:
    """One request that reached the server, and what it was answered."""

    device_token: str
    http_version: str
    client: tuple[str, int]
    headers: dict[str, str]
    body: bytes
    status: int
    reason: str
    # The provider token and its verified claims and header (empty when it did not verify).
    token: str = ""
    claims: dict[str, Any] = field(default_factory=dict)
    token_header: dict[str, Any] = field(default_factory=dict)

    @property
    def payload(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class ApnsServer:
    """The ASGI app; ``now_s`` is the test's clock, the one token ages are judged by."""

    public_key: ec.EllipticCurvePublicKey
    now_s: Callable[[], float]
    script: defaultdict[str, deque[Answer]] = field(default_factory=lambda: defaultdict(deque))
    seen: list[Seen] = field(default_factory=list)
    # Off for tests that make APNs call a fresh token expired, then expect a new one at once.
    enforce_refresh_interval: bool = True
    _token: str = ""
    _token_iat: int = 0
    port: int = 0

    def answer_next(self, device_token: str, *answers: Answer) -> None:
        self.script[device_token].extend(answers)

    def accepted(self) -> list[Seen]:
        return [s for s in self.seen if s.status == 200]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                kind = (await receive())["type"]
                await send({"type": f"{kind}.complete"})  # lifespan.startup / .shutdown
                if kind == "lifespan.shutdown":
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        match = _PATH.fullmatch(scope["path"])
        token = headers.get("authorization", "").removeprefix("bearer ")
        claims, token_header = self._verify(token)
        status, reason, extra = self._judge(scope, headers, body, match, token, claims)
        if status == 200 and match is not None:
            scripted = self.script[match.group(1)]
            if scripted:
                answer = scripted.popleft()
                status, reason, extra = answer.status, answer.reason, answer.headers
        if status == 200:
            extra = {"apns-id": headers["apns-id"].upper(), **extra}
        self.seen.append(
            Seen(
                match.group(1) if match else "", scope["http_version"], tuple(scope["client"]),
                headers, body, status, reason, token, claims, token_header,
            )
        )  # fmt: skip
        content = orjson.dumps({"reason": reason}) if reason else b""
        response_headers = [(k.encode(), v.encode()) for k, v in extra.items()]
        if content:
            response_headers.append((b"content-type", b"application/json"))
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": content})

    def _verify(self, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self.public_key,
                algorithms=["ES256"],
                options={"verify_iat": False, "verify_exp": False, "require": ["iss", "iat"]},
            )
        except jwt.PyJWTError:
            return {}, {}
        return claims, header

    def _judge(
        self,
        scope: dict[str, Any],
        headers: dict[str, str],
        body: bytes,
        match: re.Match[str] | None,
        token: str,
        claims: dict[str, Any],
    ) -> tuple[int, str, dict[str, str]]:
        """APNs' checks, in its order; (200, "", {}) when the request is sound."""
        if scope["http_version"] != "2" or scope["scheme"] != "https":
            return 400, "HTTP2OverTLSRequired", {}
        if scope["method"] != "POST":
            return 405, "MethodNotAllowed", {}
        if match is None:
            return 404, "BadPath", {}
        if not token:
            return 403, "MissingProviderToken", {}
        header = jwt.get_unverified_header(token) if claims else {}
        if not claims or header.get("kid") != KEY_ID or claims.get("iss") != TEAM_ID:
            return 403, "InvalidProviderToken", {}
        iat = claims["iat"]
        if not isinstance(iat, int) or self.now_s() - iat > TOKEN_LIFETIME_S:
            return 403, "ExpiredProviderToken", {}
        if token != self._token:
            if (
                self.enforce_refresh_interval
                and self._token
                and iat - self._token_iat < MIN_TOKEN_REFRESH_S
            ):
                return 429, "TooManyProviderTokenUpdates", {}
            self._token, self._token_iat = token, iat
        if headers.get("apns-topic") != TOPIC:
            return 400, "BadTopic" if "apns-topic" in headers else "MissingTopic", {}
        if headers.get("apns-push-type") != "alert":
            return 400, "InvalidPushType", {}
        if headers.get("apns-priority", "10") not in ("5", "10"):
            return 400, "BadPriority", {}
        if not headers.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate", {}
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId", {}
        if not _UUID.fullmatch(headers.get("apns-id", "")):
            return 400, "BadMessageId", {}
        if not body:
            return 400, "PayloadEmpty", {}
        if len(body) > 4096:
            return 413, "PayloadTooLarge", {}
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return 400, "BadPayload", {}
        if not isinstance(parsed, dict) or not isinstance(parsed.get("aps"), dict):
            return 400, "BadPayload", {}
        return 200, "", {}


@asynccontextmanager
async def apns_server(
    app: ApnsServer,
    tls: ApnsTls,
    *,
    alpn: tuple[str, ...] = ("h2", "http/1.1"),
    max_requests: int = 2**62,
) -> AsyncIterator[ApnsServer]:
    """Serves ``app`` on a free port of 127.0.0.1 until the block ends.

    ``max_requests``: the server drops a connection when a request beyond it arrives
    (hypercorn's GOAWAY, which also cuts the request in flight)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections wait in the backlog until hypercorn accepts: no race
    app.port = sock.getsockname()[1]
    config = HypercornConfig()
    config.bind = [f"fd://{sock.detach()}"]
    config.certfile, config.keyfile = str(tls.cert_file), str(tls.key_file)
    config.alpn_protocols = list(alpn)
    config.errorlog = None
    config.accesslog = None
    config.graceful_timeout = 1.0
    config.keep_alive_max_requests = max_requests
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait, mode="asgi"))  # type: ignore[arg-type]
    try:
        yield app
    finally:
        stop.set()
        await task
