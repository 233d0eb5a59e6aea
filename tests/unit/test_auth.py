from __future__ import annotations

import dataclasses

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
