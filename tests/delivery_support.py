"""Real receivers on loopback for the delivery tests: an SMTP server (aiosmtpd, with
STARTTLS, implicit TLS and AUTH) and a webhook receiver that verifies every request with
the standardwebhooks library. Each answers from a script, so a test can say "421 twice,
then 250" and see exactly what arrived."""

from __future__ import annotations

import asyncio
import base64
import datetime
import email
import email.policy
import ipaddress
import ssl
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook, WebhookVerificationError

from notify.store import Store
from notify.store.memory import MemoryStore
from notify.store.postgres import PostgresStore
from tests.http_stub import loopback_server
from tests.pg import PostgresCluster, truncate

SMTP_USER, SMTP_PASSWORD = "notify", "s3cret pass"


@dataclass(frozen=True, slots=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1, and contexts for both sides."""

    cert_pem: bytes
    key_pem: bytes

    def server_context(self, tmp: Any) -> ssl.SSLContext:
        cert, key = tmp / "cert.pem", tmp / "key.pem"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(cert), str(key))
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.cert_pem.decode())


def self_signed() -> Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


@dataclass
class SmtpSink:
    """Answers DATA from ``script`` (then 250) and RCPT 550 for ``refused`` addresses;
    keeps every accepted message and whether it came over TLS, logged in."""

    script: deque[str] = field(default_factory=deque)
    refused: set[str] = field(default_factory=set)
    messages: list[EmailMessage] = field(default_factory=list)
    sessions: list[tuple[bool, bool]] = field(default_factory=list)  # (tls, authenticated)
    attempts: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    # Seconds each accepted DATA takes: a slow mail server (load, not synchronisation).
    delay: float = 0.0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self.script:
            return self.script.popleft()
        if self.delay:
            await asyncio.sleep(self.delay)
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        transport = server.transport
        tls = session.ssl is not None or (
            transport is not None and transport.get_extra_info("ssl_object") is not None
        )
        self.sessions.append((tls, bool(session.authenticated)))
        self.arrived.set()
        return "250 2.0.0 queued"

    def message_ids(self) -> list[str]:
        return [str(m["Message-ID"]) for m in self.messages]

    async def wait_unique(self, count: int) -> None:
        """Until messages with ``count`` distinct Message-IDs have arrived."""
        while True:
            self.arrived.clear()
            if len(set(self.message_ids())) >= count:
                return
            await self.arrived.wait()


def _authenticator(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    return AuthResult(success=ok)


@asynccontextmanager
async def smtp_server(
    sink: SmtpSink,
    *,
    tls: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    auth: bool = True,
) -> AsyncIterator[SmtpSink]:
    """An SMTP server on 127.0.0.1 (a free port): STARTTLS offered and required when
    ``tls`` is given (or TLS at once with ``implicit_tls``); AUTH required with ``auth``."""

    def factory() -> SMTP:
        return SMTP(
            sink,
            hostname="127.0.0.1",
            tls_context=None if implicit_tls else tls,
            require_starttls=tls is not None and not implicit_tls,
            auth_required=auth,
            # Over implicit TLS aiosmtpd cannot tell the socket is encrypted.
            auth_require_tls=tls is not None and not implicit_tls,
            authenticator=_authenticator if auth else None,
        )

    server = await asyncio.get_running_loop().create_server(
        factory, "127.0.0.1", 0, ssl=tls if implicit_tls else None
    )
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"a webhook secret of 32 bytes!!!!").decode()


@dataclass
class WebhookReceiver:
    """An HTTP/1.1 receiver: answers from ``script`` ((status, headers) pairs, then 200) and
    keeps every request whose Standard Webhooks signature verified (unsigned ones count in
    ``rejected`` and get 401)."""

    script: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    secret: str = WEBHOOK_SECRET
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    rejected: int = 0
    attempts: int = 0
    port: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def ids(self) -> list[str]:
        return [headers["webhook-id"] for headers, _ in self.received]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.attempts += 1
            status, extra = self.script.popleft() if self.script else (200, {})
            try:
                parsed = Webhook(self.secret).verify(body, headers)
            except WebhookVerificationError:
                self.rejected += 1
                status, extra = 401, {}
            else:
                if 200 <= status < 300:
                    self.received.append((headers, parsed))
                    self.arrived.set()
            extra_lines = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
            writer.write(
                f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n"
                f"{extra_lines}\r\n".encode()
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def webhook_receiver(receiver: WebhookReceiver) -> AsyncIterator[WebhookReceiver]:
    async with loopback_server(receiver.handle) as port:
        receiver.port = port
        yield receiver


# ------------------------------------------------------------ fixtures: a store per driver


@pytest.fixture(name="pg_dsn")
def pg_dsn_fixture(driver: str, request: pytest.FixtureRequest) -> str:
    """An empty database for the postgres driver ("" for memory)."""
    if driver == "memory":
        return ""
    cluster: PostgresCluster = request.getfixturevalue("pg_cluster")
    asyncio.run(truncate(cluster.dsn()))
    return cluster.dsn()


@pytest.fixture(name="store")
async def store_fixture(pg_dsn: str) -> AsyncIterator[Store]:
    if not pg_dsn:
        yield MemoryStore()
        return
    opened = await PostgresStore.connect(pg_dsn, min_size=1, max_size=4)
    try:
        yield opened
    finally:
        await opened.close()
