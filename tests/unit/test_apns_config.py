"""NOTIFY_APNS_*: no APNs when unset, one line naming the variable when incomplete or
unusable (never quoting the key), the environment choosing Apple's endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notify.config import ConfigError, load_config
from notify.core.clock import ManualClock
from notify.delivery.apns import apns_sender

REQUIRED = (
    "NOTIFY_APNS_KEY_FILE",
    "NOTIFY_APNS_KEY_ID",
    "NOTIFY_APNS_TEAM_ID",
    "NOTIFY_APNS_TOPIC",
)


def write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture(name="env")
def env_fixture(tmp_path: Path) -> dict[str, str]:
    key = write_key(tmp_path / "AuthKey.p8", ec.generate_private_key(ec.SECP256R1()))
    return {
        "NOTIFY_AUTH_DEV_MODE": "true",
        "NOTIFY_APNS_KEY_FILE": str(key),
        "NOTIFY_APNS_KEY_ID": "ABC123DEFG",
        "NOTIFY_APNS_TEAM_ID": "TEAM123456",
        "NOTIFY_APNS_TOPIC": "com.example.app",
    }


async def build(env: dict[str, str]) -> str:
    """The sender's repr (endpoint and topic) after building it, or raises ConfigError."""
    sender = apns_sender(load_config(env), ManualClock())
    assert sender is not None
    await sender.close()
    return repr(sender)


def test_no_apns_variable_means_no_sender() -> None:
    assert apns_sender(load_config({"NOTIFY_AUTH_DEV_MODE": "true"}), ManualClock()) is None


async def test_the_environment_picks_apples_endpoint_unless_one_is_given(
    env: dict[str, str],
) -> None:
    assert "'https://api.push.apple.com'" in await build(env)
    sandbox = {**env, "NOTIFY_APNS_ENVIRONMENT": "sandbox"}
    assert "'https://api.sandbox.push.apple.com'" in await build(sandbox)
    local = {**sandbox, "NOTIFY_APNS_ENDPOINT": "https://127.0.0.1:8443/"}
    assert "'https://127.0.0.1:8443'" in await build(local)


@pytest.mark.parametrize("missing", REQUIRED)
def test_an_incomplete_configuration_names_the_missing_variable(
    env: dict[str, str], missing: str
) -> None:
    del env[missing]
    with pytest.raises(ConfigError) as raised:
        apns_sender(load_config(env), ManualClock())
    message = str(raised.value)
    assert message.startswith(f"{missing}: required for APNs")
    assert "\n" not in message


async def test_a_key_file_that_cannot_be_used_is_named_without_its_content(
    env: dict[str, str], tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.p8"
    garbage.write_text(
        "-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n"
    )
    rsa_key = write_key(tmp_path / "rsa.p8", rsa.generate_private_key(65537, 2048))
    p384 = write_key(tmp_path / "p384.p8", ec.generate_private_key(ec.SECP384R1()))
    cases = {
        str(tmp_path / "absent.p8"): "cannot read",
        str(garbage): "is not an unencrypted PEM private key",
        str(rsa_key): "is not an EC P-256 key",
        str(p384): "is not an EC P-256 key",
    }
    for path, says in cases.items():
        with pytest.raises(ConfigError) as raised:
            await build({**env, "NOTIFY_APNS_KEY_FILE": path})
        message = str(raised.value)
        assert message.startswith("NOTIFY_APNS_KEY_FILE: ")
        assert says in message
        assert "TOPSECRET" not in message
        assert raised.value.__cause__ is None  # nothing chained that could quote the file


async def test_a_ca_file_that_is_not_a_pem_bundle_is_named(
    env: dict[str, str], tmp_path: Path
) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"^NOTIFY_APNS_CA_FILE: .* is not a readable PEM"):
        await build({**env, "NOTIFY_APNS_CA_FILE": str(bad)})


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("NOTIFY_APNS_KEY_ID", "ABC123", "is not a 10-character Apple ID"),
        ("NOTIFY_APNS_TEAM_ID", "TEAM 12345", "is not a 10-character Apple ID"),
        ("NOTIFY_APNS_ENVIRONMENT", "staging", "is not one of production, sandbox"),
        ("NOTIFY_APNS_ENDPOINT", "http://127.0.0.1:8443", "is not an https://host[:port] URL"),
        ("NOTIFY_APNS_ENDPOINT", "https://api.push.apple.com/3", "is not an https://host"),
        ("NOTIFY_APNS_ENDPOINT", "https://127.0.0.1:99999", "has a bad port"),
    ],
)
def test_bad_values_stop_loading_with_the_variable_named(
    env: dict[str, str], name: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config({**env, name: value})
    assert str(raised.value).startswith(f"{name}: ")
    assert says in str(raised.value)
