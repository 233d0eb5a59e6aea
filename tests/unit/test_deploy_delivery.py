"""The delivery variables the deploy templates show commented out: every provider is
there, and uncommented (with real key files and keys where the templates hold
placeholders) they make a configuration that builds every provider, so an operator
who fills them in gets no start-up refusal from the example itself."""

from __future__ import annotations

import asyncio
import base64
import os
import re
from pathlib import Path

import pytest
import yaml

from notify.config import load_config
from notify.core.clock import SystemClock
from notify.core.model import Channel
from notify.core.vapidkeys import generate_private_key, private_key_b64url
from notify.delivery.factory import ExternalProviders
from notify.metrics import Metrics
from notify.store.memory import MemoryStore
from tests.apns_support import make_p8
from tests.fcm_support import ServiceAccountKey

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ENV_EXAMPLE = DEPLOY / "env.example"
KUBERNETES = DEPLOY / "kubernetes"
# What an operator needs to turn each provider on.
PROVIDER_VARIABLES = (
    "NOTIFY_EMAIL_SMTP_URL",
    "NOTIFY_EMAIL_FROM",
    "NOTIFY_WEBHOOK_SECRET",
    "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY",
    "NOTIFY_WEBPUSH_SUBJECT",
    "NOTIFY_FCM_CREDENTIALS_FILE",
    "NOTIFY_APNS_KEY_FILE",
    "NOTIFY_APNS_KEY_ID",
    "NOTIFY_APNS_TEAM_ID",
    "NOTIFY_APNS_TOPIC",
    "NOTIFY_TWILIO_ACCOUNT_SID",
    "NOTIFY_TWILIO_AUTH_TOKEN",
    "NOTIFY_TWILIO_FROM",
    "NOTIFY_TWILIO_WHATSAPP_FROM",
)
EVERY_CHANNEL = {
    Channel.EMAIL,
    Channel.WEBHOOK,
    Channel.WEB_PUSH,
    Channel.MOBILE_PUSH,
    Channel.SMS,
    Channel.WHATSAPP,
}


def commented_env(text: str) -> dict[str, str]:
    """``# NOTIFY_X=value`` lines of an env file."""
    found = re.findall(r"^# (NOTIFY_[A-Z0-9_]+)=(.*)$", text, re.MULTILINE)
    return dict(found)


def commented_yaml(path: Path) -> dict[str, str]:
    """``  # NOTIFY_X: value`` lines of a manifest, read as YAML would read them."""
    lines = re.findall(r"^\s+# (NOTIFY_[A-Z0-9_]+: .*)$", path.read_text(), re.MULTILINE)
    loaded = yaml.safe_load("\n".join(lines))
    assert isinstance(loaded, dict)
    return {str(k): str(v) for k, v in loaded.items()}


def with_real_keys(values: dict[str, str], folder: Path) -> dict[str, str]:
    """The examples' file paths and placeholder keys replaced by working ones."""
    p8, _ = make_p8(folder)
    credentials = ServiceAccountKey.generate().write(
        folder / "service-account.json", "https://oauth2.googleapis.com/token"
    )
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    return {
        **values,
        "NOTIFY_APNS_KEY_FILE": str(p8),
        "NOTIFY_FCM_CREDENTIALS_FILE": str(credentials),
        "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY": private_key_b64url(generate_private_key()),
        "NOTIFY_WEBHOOK_SECRET": secret,
        "NOTIFY_AUTH_DEV_MODE": "true",
    }


def built_channels(environ: dict[str, str]) -> set[Channel]:
    config = load_config(environ)
    providers = ExternalProviders(config, SystemClock(), devices=MemoryStore(), metrics=Metrics())
    try:
        return {p.channel for p in providers.providers}
    finally:
        asyncio.run(providers.close())


def test_env_example_shows_every_provider_and_builds_them_all(tmp_path: Path) -> None:
    values = commented_env(ENV_EXAMPLE.read_text())
    missing = [name for name in PROVIDER_VARIABLES if name not in values]
    assert not missing, f"env.example does not show {missing}"
    assert built_channels(with_real_keys(values, tmp_path)) == EVERY_CHANNEL


def test_compose_hands_the_env_file_to_notify() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["services"]["notify"]["env_file"] == ".env"


def test_the_kubernetes_manifests_show_every_provider_and_build_them_all(
    tmp_path: Path,
) -> None:
    config = commented_yaml(KUBERNETES / "configmap.yaml")
    secrets = commented_yaml(KUBERNETES / "secret.yaml")
    assert not set(config) & set(secrets), "a secret must not sit in the ConfigMap"
    for name in ("NOTIFY_WEBHOOK_SECRET", "NOTIFY_TWILIO_AUTH_TOKEN", "NOTIFY_EMAIL_SMTP_URL"):
        assert name in secrets, f"{name} belongs in the Secret"
    values = {**config, **secrets}
    missing = [name for name in PROVIDER_VARIABLES if name not in values]
    assert not missing, f"the manifests do not show {missing}"
    assert built_channels(with_real_keys(values, tmp_path)) == EVERY_CHANNEL


@pytest.mark.parametrize("path", [ENV_EXAMPLE, KUBERNETES / "secret.yaml"], ids=lambda p: p.name)
def test_commented_secrets_are_marked_placeholders(path: Path) -> None:
    text = path.read_text()
    values = commented_env(text) if path == ENV_EXAMPLE else commented_yaml(path)
    for name in (
        "NOTIFY_WEBHOOK_SECRET",
        "NOTIFY_TWILIO_AUTH_TOKEN",
        "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY",
    ):
        assert "CHANGE-ME" in values[name], f"{name} in {path.name} must be a marked placeholder"
