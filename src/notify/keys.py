"""JWT verification keys, each pinned to the algorithms its type can sign with.

Pinning is what stops algorithm confusion: an RSA public key never verifies an
HS256 token (where the attacker would use the public key as the HMAC secret),
an RSA key never an ES256 one, and nothing verifies ``none``. A key accepts
only algorithms of its own family, narrowed by the JWK's ``alg`` when it has
one and by NOTIFY_AUTH_JWT_ALGORITHMS when that is set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from notify.config import HMAC_ALGORITHMS, ConfigError

RSA_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
_EC_ALGORITHM_BY_CURVE = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)
MAX_PEM_FILE_BYTES = 256 * 1024


class UnusableKey(ValueError):
    """A key that cannot be used; the message is one line."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key and the only algorithms it may verify; ``kid`` is None for keys given by file."""

    key: Any
    algorithms: frozenset[str]
    kid: str | None = None


def family(public_key: object) -> tuple[tuple[str, ...], str]:
    """The algorithms a public key's type can verify, and the one assumed when none is named."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return RSA_ALGORITHMS, "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        algorithm = _EC_ALGORITHM_BY_CURVE.get(public_key.curve.name)
        if algorithm is None:
            raise UnusableKey(f"EC curve {public_key.curve.name} is not supported")
        return (algorithm,), algorithm
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return ("EdDSA",), "EdDSA"
    raise UnusableKey(f"{type(public_key).__name__} keys are not supported")


def pin(
    possible: Iterable[str], default: str, named: str | None, accepted: tuple[str, ...]
) -> frozenset[str]:
    """The algorithms a key may verify: its own family only, never more than configured."""
    possible = tuple(possible)
    if named is not None:
        if named not in possible:
            raise UnusableKey(f"alg {named} does not fit the key's type")
        chosen = {named}
    elif accepted:
        chosen = set(possible)
    else:
        chosen = {default}
    if accepted:
        chosen &= set(accepted)
    if not chosen:
        raise UnusableKey("none of NOTIFY_AUTH_JWT_ALGORITHMS fits the key")
    return frozenset(chosen)


def secret_key(secret: str, accepted: tuple[str, ...]) -> VerificationKey | None:
    """The HMAC secret, or None when the accepted algorithms leave it nothing to verify."""
    try:
        return VerificationKey(secret, pin(HMAC_ALGORITHMS, "HS256", None, accepted))
    except UnusableKey:
        return None


def load_pem_file(path: str, accepted: tuple[str, ...]) -> list[VerificationKey]:
    """Every public key or certificate in a PEM file; raises ConfigError naming the variable."""
    name = "NOTIFY_AUTH_JWT_PUBLIC_KEY_FILE"
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_PEM_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path}: {exc.strerror}") from None
    if len(data) > MAX_PEM_FILE_BYTES:
        raise ConfigError(f"{name}: {path} is larger than {MAX_PEM_FILE_BYTES} bytes")
    keys: list[VerificationKey] = []
    for number, block in enumerate(_PEM_BLOCK.finditer(data), start=1):
        kind = block.group(1).decode()
        try:
            if kind == "CERTIFICATE":
                public_key: object = x509.load_pem_x509_certificate(block.group(0)).public_key()
            elif kind == "PUBLIC KEY" or kind == "RSA PUBLIC KEY":
                public_key = load_pem_public_key(block.group(0))
            else:
                raise UnusableKey(f"a {kind} block is not a public key or certificate")
            possible, default = family(public_key)
            keys.append(VerificationKey(public_key, pin(possible, default, None, accepted)))
        except (UnusableKey, ValueError) as exc:
            raise ConfigError(f"{name}: key {number} in {path}: {exc}") from None
    if not keys:
        raise ConfigError(f"{name}: {path} holds no PEM public key or certificate")
    return keys


def key_from_jwk(data: Mapping[str, Any], accepted: tuple[str, ...]) -> VerificationKey:
    """One signing key from a JWKS; symmetric, encryption and unknown keys are refused."""
    if data.get("use", "sig") != "sig":
        raise UnusableKey(f"use {data.get('use')!r} is not for signatures")
    if data.get("kty") == "oct":
        raise UnusableKey("symmetric keys do not belong in a public JWKS")
    kid = data.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise UnusableKey("kid is not a string")
    named = data.get("alg")
    if named is not None and not isinstance(named, str):
        raise UnusableKey("alg is not a string")
    try:
        public_key = jwt.PyJWK(dict(data)).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise UnusableKey(f"unusable JWK: {type(exc).__name__}") from None
    possible, default = family(public_key)
    return VerificationKey(public_key, pin(possible, default, named, accepted), kid)
