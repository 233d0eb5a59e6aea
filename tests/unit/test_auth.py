from __future__ import annotations

import dataclasses
import time

import jwt
import pytest

from notify.auth import ClientAuthenticator, InternalAuthenticator, Principal
from notify.config import Config
from notify.core.errors import Unauthenticated
from tests.support import JWT_SECRET, make_jwt

PROD = Config(jwt_secret=JWT_SECRET, internal_token="tok")
DEV = dataclasses.replace(PROD, dev_mode=True)


def test_dev_tokens() -> None:
    auth = ClientAuthenticator(DEV)
    assert auth.authenticate("Bearer dev:alice:acme") == Principal("acme", "alice")
    assert auth.authenticate("bearer dev:alice:acme:a@x.test") == Principal(
        "acme", "alice", "a@x.test"
    )
    for bad in ("Bearer dev:alice", "Bearer dev::acme", "Bearer dev:a:b:c:d"):
        with pytest.raises(Unauthenticated):
            auth.authenticate(bad)


# The HS512 token below is signed with the (43-byte) HS256 test secret on
# purpose: it must be refused for its algorithm, not for its signature.
@pytest.mark.filterwarnings("ignore:The HMAC key is 43 bytes long")
def test_jwt_claims() -> None:
    auth = ClientAuthenticator(PROD)
    token = make_jwt(sub="bob", tenant="globex", email="b@x.test")
    assert auth.authenticate(f"Bearer {token}") == Principal("globex", "bob", "b@x.test")
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(f"Bearer {make_jwt(expires_in=-3600)}")
    with pytest.raises(Unauthenticated):
        auth.authenticate(f"Bearer {make_jwt(secret='x' * 40)}")
    with pytest.raises(Unauthenticated):
        auth.authenticate("Bearer " + make_jwt(algorithm="HS512"))


def test_internal_token() -> None:
    InternalAuthenticator(PROD).check("tok")
    InternalAuthenticator(DEV).check(None)
    for bad in (None, "", "tok2", "to"):
        with pytest.raises(Unauthenticated):
            InternalAuthenticator(PROD).check(bad)


def test_aud_is_ignored_when_no_audience_is_configured() -> None:
    auth = ClientAuthenticator(PROD)
    for aud in ("notify", ["a", "b"], "anything"):
        assert auth.authenticate(f"Bearer {make_jwt(aud=aud)}").user_id == "user-alice"
    pinned = ClientAuthenticator(dataclasses.replace(PROD, jwt_audience="notify"))
    assert pinned.authenticate(f"Bearer {make_jwt(aud=['x', 'notify'])}").user_id == "user-alice"
    with pytest.raises(Unauthenticated, match="audience is not accepted"):
        pinned.authenticate(f"Bearer {make_jwt(aud='other')}")


def test_missing_exp_and_future_nbf_are_named() -> None:
    auth = ClientAuthenticator(dataclasses.replace(PROD, jwt_leeway=5))
    no_exp = jwt.encode({"sub": "u", "tenant": "t"}, JWT_SECRET, algorithm="HS256")
    with pytest.raises(
        Unauthenticated, match=r"^token has no exp claim \(an expiry is required\)$"
    ):
        auth.authenticate(f"Bearer {no_exp}")
    with pytest.raises(Unauthenticated, match=r"^token is not valid yet"):
        auth.authenticate(f"Bearer {make_jwt(nbf=int(time.time()) + 3600)}")
    # Within the leeway, a slightly early nbf is fine.
    assert auth.authenticate(f"Bearer {make_jwt(nbf=int(time.time()) + 1)}").user_id
    # The details come only after the signature checks out: a forger learns nothing.
    forged_no_exp = jwt.encode({"sub": "u", "tenant": "t"}, "f" * 40, algorithm="HS256")
    forged_early = make_jwt(secret="f" * 40, nbf=int(time.time()) + 3600)
    for forged in (forged_no_exp, forged_early):
        with pytest.raises(Unauthenticated, match=r"^token is invalid$"):
            auth.authenticate(f"Bearer {forged}")


def test_only_the_configured_hmac_algorithms_are_accepted() -> None:
    auth = ClientAuthenticator(dataclasses.replace(PROD, jwt_algorithms=("HS512",)))
    long_secret = dataclasses.replace(PROD, jwt_secret="k" * 64, jwt_algorithms=("HS512",))
    token = make_jwt(secret="k" * 64, algorithm="HS512")
    assert ClientAuthenticator(long_secret).authenticate(f"Bearer {token}").user_id
    with pytest.raises(Unauthenticated, match="algorithm is not accepted"):
        auth.authenticate(f"Bearer {make_jwt()}")
