"""Signing keys and a JWKS served over real HTTP on 127.0.0.1, as an identity provider would."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


@dataclass
class SigningKey:
    """A private key, its kid, and the algorithm it signs with."""

    kid: str
    algorithm: str
    private: Any

    @classmethod
    def rsa(cls, kid: str, algorithm: str = "RS256") -> SigningKey:
        return cls(kid, algorithm, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def ed25519(cls, kid: str) -> SigningKey:
        return cls(kid, "EdDSA", ed25519.Ed25519PrivateKey.generate())

    def jwk(self, *, with_alg: bool = True) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        data: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        data.update(kid=self.kid, use="sig")
        if with_alg:
            data["alg"] = self.algorithm
        return data

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def sign(self, *, kid: str | None = None, no_kid: bool = False, **claims: Any) -> str:
        """A token signed with this key; its header names ``kid`` (this key's by default)."""
        headers = {} if no_kid else {"kid": kid or self.kid}
        return jwt.encode(default_claims(**claims), self.private, self.algorithm, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade_token(
    header: dict[str, Any], claims: dict[str, Any], hmac_secret: bytes | None
) -> str:
    """A token pyjwt refuses to make: HS256 keyed with a public key, or alg none."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if hmac_secret is None:
        return f"{signing_input}."
    signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def default_claims(**claims: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"sub": "user-alice", "tenant": "acme", "exp": int(time.time()) + 300}
    payload.update(claims)
    return {name: value for name, value in payload.items() if value is not None}  # None: left out


@dataclass
class JWKSServer:
    """What the test's identity provider serves; change ``body`` or ``keys`` to rotate."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    body: bytes | None = None  # overrides the JWKS document when set
    status: int = 200
    requests: int = 0
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def document(self) -> tuple[int, bytes]:
        with self.lock:
            self.requests += 1
            if self.body is not None:
                return self.status, self.body
            return self.status, json.dumps({"keys": self.keys}).encode()


@contextmanager
def jwks_server(*keys: SigningKey) -> Iterator[JWKSServer]:
    state = JWKSServer(keys=[key.jwk() for key in keys])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = state.document()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
