"""RS256/ES256/EdDSA client tokens against a JWKS served over real HTTP on 127.0.0.1.

The cache's clock is injected, so the rate limit and the refresh age are
tested without waiting.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from notify.auth import UNKNOWN_KID, AuthStartupError, ClientAuthenticator, Principal
from notify.config import Config, ConfigError
from notify.core.errors import Unauthenticated
from notify.jwks import MAX_AGE, MIN_REFRESH_INTERVAL, JWKSCache, JWKSError
from tests.keyserver import (
    JWKSServer,
    SigningKey,
    default_claims,
    handmade_token,
    jwks_server,
)

INTERNAL = "internal-token-for-jwks-tests-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def rsa_a() -> SigningKey:
    return SigningKey.rsa("key-a")


@pytest.fixture(scope="module")
def rsa_b() -> SigningKey:
    return SigningKey.rsa("key-b")


@pytest.fixture
def idp(rsa_a: SigningKey) -> Iterator[JWKSServer]:
    with jwks_server(rsa_a) as server:
        yield server


def authenticator(url: str, clock: Clock | None = None) -> ClientAuthenticator:
    config = Config(jwt_jwks_url=url, internal_token=INTERNAL)
    return ClientAuthenticator(config, clock=clock or Clock())


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def test_rs256_tokens_verify_with_the_fetched_jwks(
    idp: JWKSServer, rsa_a: SigningKey
) -> None:
    auth = authenticator(idp.url)
    await auth.prepare()
    assert idp.requests == 1
    token = rsa_a.sign(sub="bob", tenant="globex", email="b@x.test")
    assert auth.authenticate(bearer(token)) == Principal("globex", "bob", "b@x.test")
    for _ in range(100):  # the hot path reads the cache, never the network
        auth.authenticate(bearer(token))
    assert idp.requests == 1
    await auth.close()


async def test_es256_and_eddsa_keys_from_the_jwks(rsa_a: SigningKey) -> None:
    ec_key, ed_key = SigningKey.ec("ec-1"), SigningKey.ed25519("ed-1")
    with jwks_server(rsa_a, ec_key, ed_key) as idp:
        idp.keys = [rsa_a.jwk(), ec_key.jwk(with_alg=False), ed_key.jwk(with_alg=False)]
        auth = authenticator(idp.url)
        await auth.prepare()
        assert auth.authenticate(bearer(ec_key.sign(sub="e"))).user_id == "e"
        assert auth.authenticate(bearer(ed_key.sign(sub="d"))).user_id == "d"
        await auth.close()


async def test_rotation_by_kid_refreshes_once_and_accepts_the_new_key(
    idp: JWKSServer, rsa_a: SigningKey, rsa_b: SigningKey
) -> None:
    clock = Clock()
    auth = authenticator(idp.url, clock)
    await auth.prepare()
    idp.keys = [rsa_a.jwk(), rsa_b.jwk()]  # the provider publishes key-b and signs with it
    token_b = bearer(rsa_b.sign())
    # The async path waits for the one refresh it needs, so the first token passes.
    assert (await auth.authenticate_async(token_b)).user_id == "user-alice"
    assert idp.requests == 2
    assert auth.authenticate(token_b).user_id == "user-alice"  # now cached
    assert auth.authenticate(bearer(rsa_a.sign())).user_id == "user-alice"
    idp.keys = [rsa_b.jwk()]  # key-a retired: its tokens fail after the next refresh
    clock.now += MIN_REFRESH_INTERVAL
    assert auth.jwks is not None
    await auth.jwks.refresh()
    with pytest.raises(Unauthenticated, match=re.escape(UNKNOWN_KID)):
        auth.authenticate(bearer(rsa_a.sign()))
    await auth.close()


async def test_sync_authenticate_refuses_an_unknown_kid_and_refreshes_in_the_background(
    idp: JWKSServer, rsa_a: SigningKey, rsa_b: SigningKey
) -> None:
    clock = Clock()
    auth = authenticator(idp.url, clock)
    await auth.prepare()
    idp.keys = [rsa_a.jwk(), rsa_b.jwk()]
    token_b = bearer(rsa_b.sign())
    assert auth.jwks is not None
    with pytest.raises(Unauthenticated, match=re.escape(UNKNOWN_KID)):
        auth.authenticate(token_b)
    assert auth.jwks.refreshing
    pending = auth.jwks.refresh_soon()  # the refresh that call started, still in flight
    assert pending is not None
    assert await pending is True
    assert auth.authenticate(token_b).user_id == "user-alice"
    assert idp.requests == 2
    await auth.close()


async def test_forged_kids_cannot_cause_a_fetch_storm(idp: JWKSServer, rsa_a: SigningKey) -> None:
    clock = Clock()
    auth = authenticator(idp.url, clock)
    await auth.prepare()
    clock.now += MIN_REFRESH_INTERVAL
    forged = [bearer(rsa_a.sign(kid=f"forged-{n}")) for n in range(200)]
    results = await asyncio.gather(
        *(auth.authenticate_async(token) for token in forged), return_exceptions=True
    )
    assert all(isinstance(r, Unauthenticated) and r.message == UNKNOWN_KID for r in results)
    assert idp.requests == 2  # one refresh for all 200, shared
    for token in forged:  # within the interval: no fetch at all
        with pytest.raises(Unauthenticated, match=re.escape(UNKNOWN_KID)):
            await auth.authenticate_async(token)
    assert idp.requests == 2
    clock.now += MIN_REFRESH_INTERVAL - 0.001
    with pytest.raises(Unauthenticated, match=re.escape(UNKNOWN_KID)):
        await auth.authenticate_async(forged[0])
    assert idp.requests == 2
    clock.now += 0.001
    with pytest.raises(Unauthenticated, match=re.escape(UNKNOWN_KID)):
        await auth.authenticate_async(forged[0])
    assert idp.requests == 3
    await auth.close()


async def test_a_stale_cache_refreshes_in_the_background_and_keeps_serving(
    idp: JWKSServer, rsa_a: SigningKey, rsa_b: SigningKey
) -> None:
    clock = Clock()
    auth = authenticator(idp.url, clock)
    await auth.prepare()
    token_a = bearer(rsa_a.sign())
    assert auth.jwks is not None
    clock.now += MAX_AGE - 1
    auth.authenticate(token_a)
    assert not auth.jwks.refreshing
    idp.keys = [rsa_a.jwk(), rsa_b.jwk()]
    clock.now += 1
    assert auth.authenticate(token_a).user_id == "user-alice"  # served from the old cache
    assert auth.jwks.refreshing
    assert idp.requests == 1  # the call above did not wait for the fetch
    pending = auth.jwks.refresh_soon()
    assert pending is not None
    assert await pending is True
    assert idp.requests == 2
    assert auth.authenticate(bearer(rsa_b.sign())).user_id == "user-alice"
    await auth.close()


async def test_a_failed_refresh_keeps_the_cached_keys(idp: JWKSServer, rsa_a: SigningKey) -> None:
    clock = Clock()
    auth = authenticator(idp.url, clock)
    await auth.prepare()
    idp.status, idp.body = 503, b"down"
    clock.now += MIN_REFRESH_INTERVAL
    with pytest.raises(Unauthenticated, match=re.escape(UNKNOWN_KID)):
        await auth.authenticate_async(bearer(rsa_a.sign(kid="new")))
    assert idp.requests == 2
    assert auth.authenticate(bearer(rsa_a.sign())).user_id == "user-alice"
    await auth.close()


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"x" * 200_000, 200, "larger than 131072 bytes"),
        (b"<html>", 200, "not JSON"),
        (b'{"issuer": "x"}', 200, 'no "keys" list'),
        (json.dumps({"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}] * 33}).encode(), 200,
         "33 keys, more than 32"),
        (json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}).encode(), 200,
         "no usable signing key"),
        (b"{}", 404, "HTTP 404"),
    ],
)  # fmt: skip
async def test_bad_documents_stop_start_up_with_one_line(
    idp: JWKSServer, body: bytes, status: int, says: str
) -> None:
    idp.body, idp.status = body, status
    auth = authenticator(idp.url)
    with pytest.raises(AuthStartupError) as error:
        await auth.prepare()
    assert says in str(error.value)
    assert str(error.value).startswith("cannot load NOTIFY_AUTH_JWT_JWKS_URL")
    assert "\n" not in str(error.value)


async def test_encryption_and_symmetric_keys_in_a_jwks_are_skipped(
    idp: JWKSServer, rsa_a: SigningKey, rsa_b: SigningKey
) -> None:
    encryption = {**rsa_b.jwk(), "use": "enc"}
    symmetric = {"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "kid": "hmac"}
    idp.keys = [rsa_a.jwk(), encryption, symmetric]
    auth = authenticator(idp.url)
    await auth.prepare()
    assert auth.jwks is not None
    assert [key.kid for key in auth.jwks.keys] == ["key-a"]
    with pytest.raises(Unauthenticated):
        auth.authenticate(bearer(rsa_b.sign()))
    hs = handmade_token(
        {"alg": "HS256", "kid": "hmac"}, default_claims(), b"secret-secret-secret-secret"
    )
    with pytest.raises(Unauthenticated, match="algorithm is not accepted"):
        auth.authenticate(bearer(hs))
    await auth.close()


async def test_a_silent_server_is_given_up_on_at_the_fetch_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        cache = JWKSCache(f"http://127.0.0.1:{silent.getsockname()[1]}/jwks", (), fetch_timeout=0.3)
        with pytest.raises(JWKSError, match=r"no answer within 0.3s"):
            await cache.refresh()
        await cache.close()


async def test_an_unreachable_jwks_is_one_line() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    auth = authenticator(f"http://127.0.0.1:{port}/jwks")
    with pytest.raises(AuthStartupError, match="ConnectError"):
        await auth.prepare()


# --- algorithm confusion -----------------------------------------------------


async def test_alg_confusion_attempts_are_refused(idp: JWKSServer, rsa_a: SigningKey) -> None:
    auth = authenticator(idp.url)
    await auth.prepare()
    public_pem = rsa_a.public_pem()
    attempts = {
        # The classic: HS256 "signed" with the RSA public key as the HMAC secret.
        "hs256 with the public key": handmade_token(
            {"alg": "HS256", "kid": "key-a", "typ": "JWT"}, default_claims(), public_pem
        ),
        "none": handmade_token({"alg": "none", "kid": "key-a"}, default_claims(), None),
        "None": handmade_token({"alg": "None", "kid": "key-a"}, default_claims(), None),
        # A key of another type, claiming the RSA key's kid.
        "es256 against an rs256 key": SigningKey.ec("x").sign(kid="key-a"),
        # The right key's family, but not the algorithm its JWK pins.
        "ps256 against an rs256 key": SigningKey("key-a", "PS256", rsa_a.private).sign(),
        "rs256 by another key with the same kid": SigningKey.rsa("key-a").sign(),
        "no alg": handmade_token({"kid": "key-a"}, default_claims(), None),
    }
    for why, token in attempts.items():
        with pytest.raises(Unauthenticated) as refused:
            auth.authenticate(bearer(token))
        assert "BEGIN PUBLIC KEY" not in refused.value.message, why
    assert auth.authenticate(bearer(rsa_a.sign())).user_id == "user-alice"
    await auth.close()


def test_hs256_with_the_public_key_is_refused_when_a_secret_is_configured_too(
    tmp_path: Path, rsa_a: SigningKey
) -> None:
    """Both an HMAC secret and an RSA key: HS256 tokens are checked with the secret only."""
    pem = tmp_path / "idp.pem"
    pem.write_bytes(rsa_a.public_pem())
    auth = ClientAuthenticator(
        Config(jwt_secret="s" * 40, jwt_public_key_file=str(pem), internal_token=INTERNAL)
    )
    confused = handmade_token({"alg": "HS256"}, default_claims(), rsa_a.public_pem())
    with pytest.raises(Unauthenticated, match="token is invalid"):
        auth.authenticate(bearer(confused))
    honest = handmade_token({"alg": "HS256"}, default_claims(), b"s" * 40)
    assert auth.authenticate(bearer(honest)).user_id == "user-alice"
    assert auth.authenticate(bearer(rsa_a.sign(no_kid=True))).user_id == "user-alice"


def test_keys_from_a_pem_file_with_several_keys(tmp_path: Path, rsa_a: SigningKey) -> None:
    ed_key, ec_key = SigningKey.ed25519("ed"), SigningKey.ec("ec")
    pem = tmp_path / "keys.pem"
    pem.write_bytes(rsa_a.public_pem() + ed_key.public_pem() + ec_key.public_pem())
    auth = ClientAuthenticator(Config(jwt_public_key_file=str(pem), internal_token=INTERNAL))
    for key in (rsa_a, ed_key, ec_key):
        assert auth.authenticate(bearer(key.sign(sub=key.kid))).user_id == key.kid
    # ES256 is pinned to the EC key: the RSA and Ed25519 keys never see it.
    forged = SigningKey.ec("other").sign()
    with pytest.raises(Unauthenticated, match="token is invalid"):
        auth.authenticate(bearer(forged))


def test_algorithms_setting_narrows_what_keys_accept(tmp_path: Path, rsa_a: SigningKey) -> None:
    pem = tmp_path / "rsa.pem"
    pem.write_bytes(rsa_a.public_pem())
    ps_only = ClientAuthenticator(
        Config(jwt_public_key_file=str(pem), jwt_algorithms=("PS256",), internal_token=INTERNAL)
    )
    assert ps_only.authenticate(bearer(SigningKey("k", "PS256", rsa_a.private).sign())).user_id
    with pytest.raises(Unauthenticated, match="algorithm is not accepted"):
        ps_only.authenticate(bearer(rsa_a.sign()))
    with pytest.raises(ConfigError, match="none of NOTIFY_AUTH_JWT_ALGORITHMS fits"):
        ClientAuthenticator(
            Config(jwt_public_key_file=str(pem), jwt_algorithms=("ES256",), internal_token=INTERNAL)
        )


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot read"),
        (b"not a key", "holds no PEM public key"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a public key"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "key 1"),
    ],
)
def test_bad_pem_files_are_one_line_config_errors(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    pem = tmp_path / "bad.pem"
    if content is not None:
        pem.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        ClientAuthenticator(Config(jwt_public_key_file=str(pem), internal_token=INTERNAL))
    assert str(error.value).startswith("NOTIFY_AUTH_JWT_PUBLIC_KEY_FILE: ")
    assert says in str(error.value)
    assert "\n" not in str(error.value)
