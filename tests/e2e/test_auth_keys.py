"""Client JWTs from an identity provider, over the wire: RS256 with a JWKS the test serves on
127.0.0.1, rotation by ``kid``, algorithm-confusion attempts, and the 401 messages callers see."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from notify.auth import AuthStartupError
from tests.keyserver import JWKSServer, SigningKey, default_claims, handmade_token, jwks_server
from tests.support import INTERNAL_TOKEN, ServerThread, eventually, notify_body, running_server

ISSUER = "https://idp.example.test/"


@pytest.fixture(scope="module")
def rsa_a() -> SigningKey:
    return SigningKey.rsa("rsa-a")


@pytest.fixture(scope="module")
def rsa_b() -> SigningKey:
    return SigningKey.rsa("rsa-b")


@pytest.fixture
def idp(rsa_a: SigningKey) -> Iterator[JWKSServer]:
    with jwks_server(rsa_a) as server:
        yield server


@pytest.fixture
def secured(idp: JWKSServer) -> Iterator[ServerThread]:
    with running_server(
        dev_mode=False,
        jwt_jwks_url=idp.url,
        jwt_issuer=ISSUER,
        jwt_leeway=5.0,
        internal_token=INTERNAL_TOKEN,
    ) as server:
        yield server


def inbox(server: ServerThread, http: httpx.Client, token: str) -> httpx.Response:
    return http.post(
        server.client_url("GetNotifications"),
        headers={"Authorization": f"Bearer {token}"},
        json={},
    )


def refused(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == "unauthenticated"
    return str(body["message"])


def test_rs256_tokens_from_the_jwks_reach_the_callers_inbox(
    secured: ServerThread, idp: JWKSServer, http: httpx.Client, rsa_a: SigningKey
) -> None:
    assert idp.requests == 1  # fetched at start, before the port opened
    sent = http.post(
        secured.internal_url(),
        headers={"X-Notify-Internal-Token": INTERNAL_TOKEN},
        json=notify_body("jwks-1", "user-rsa", tenant="acme-rsa"),
    )
    assert sent.status_code == 200, sent.text
    token = rsa_a.sign(sub="user-rsa", tenant="acme-rsa", iss=ISSUER, aud="any-audience")
    page = inbox(secured, http, token)
    assert page.status_code == 200, page.text
    assert [n["notificationId"] for n in page.json()["notifications"]] == ["jwks-1"]
    for _ in range(20):
        assert inbox(secured, http, token).status_code == 200
    assert idp.requests == 1  # verifying reads the cache


def test_rotation_by_kid(
    secured: ServerThread,
    idp: JWKSServer,
    http: httpx.Client,
    rsa_a: SigningKey,
    rsa_b: SigningKey,
) -> None:
    idp.keys = [rsa_a.jwk(), rsa_b.jwk()]
    token_b = rsa_b.sign(iss=ISSUER)
    # The first token with the new kid starts one refresh; once it lands, key-b verifies.
    eventually(lambda: inbox(secured, http, token_b).status_code == 200, what="key-b accepted")
    assert idp.requests == 2
    assert inbox(secured, http, rsa_a.sign(iss=ISSUER)).status_code == 200
    # A forged kid is refused; the refresh it may start is rate-limited.
    for n in range(50):
        message = refused(inbox(secured, http, rsa_b.sign(kid=f"forged-{n}", iss=ISSUER)))
        assert message == "token signing key (kid) is not known"
    assert idp.requests <= 3


def test_algorithm_confusion_attempts_are_unauthenticated(
    secured: ServerThread, http: httpx.Client, rsa_a: SigningKey
) -> None:
    claims = default_claims(iss=ISSUER)
    attempts = {
        "HS256 keyed with the RSA public key": handmade_token(
            {"alg": "HS256", "typ": "JWT", "kid": "rsa-a"}, claims, rsa_a.public_pem()
        ),
        "HS256 without kid": handmade_token({"alg": "HS256"}, claims, rsa_a.public_pem()),
        "alg none": handmade_token({"alg": "none", "kid": "rsa-a"}, claims, None),
        "ES256 against the RS256-pinned key": SigningKey.ec("e").sign(kid="rsa-a", iss=ISSUER),
        "EdDSA against the RS256-pinned key": SigningKey.ed25519("d").sign(kid="rsa-a", iss=ISSUER),
        "PS256 with the right key, not its pinned alg": SigningKey(
            "rsa-a", "PS256", rsa_a.private
        ).sign(iss=ISSUER),
        "RS256 by an impostor key with the same kid": SigningKey.rsa("rsa-a").sign(iss=ISSUER),
    }
    for why, token in attempts.items():
        message = refused(inbox(secured, http, token))
        assert "PUBLIC KEY" not in message, why
        assert message in (
            "token algorithm is not accepted",
            "token algorithm does not match its key",
            "token is invalid",
        ), (why, message)


def test_claim_problems_are_named_once_the_signature_holds(
    secured: ServerThread, http: httpx.Client, rsa_a: SigningKey
) -> None:
    signed_no_exp = rsa_a.sign(iss=ISSUER, exp=None)
    assert refused(inbox(secured, http, signed_no_exp)) == (
        "token has no exp claim (an expiry is required)"
    )
    early = rsa_a.sign(iss=ISSUER, nbf=int(time.time()) + 3600)
    assert refused(inbox(secured, http, early)).startswith("token is not valid yet")
    expired = rsa_a.sign(iss=ISSUER, exp=int(time.time()) - 3600)
    assert refused(inbox(secured, http, expired)) == "token has expired"
    wrong_issuer = rsa_a.sign(iss="https://evil.example/")
    assert refused(inbox(secured, http, wrong_issuer)) == "token issuer is not accepted"
    # The same claims from a forger: nothing but "invalid".
    impostor = SigningKey.rsa("rsa-a")
    for token in (
        impostor.sign(iss=ISSUER, exp=None),
        impostor.sign(iss=ISSUER, nbf=int(time.time()) + 3600),
    ):
        assert refused(inbox(secured, http, token)) == "token is invalid"


def test_an_unreachable_jwks_stops_start_up(rsa_a: SigningKey) -> None:
    with jwks_server(rsa_a) as idp:
        idp.status, idp.body = 500, b"oops"
        with (
            pytest.raises(AuthStartupError, match=r"^cannot load .* HTTP 500$"),
            running_server(dev_mode=False, jwt_jwks_url=idp.url, internal_token=INTERNAL_TOKEN),
        ):
            pass
