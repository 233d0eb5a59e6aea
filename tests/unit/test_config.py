from __future__ import annotations

import pytest

from notify.config import Config, ConfigError, load_config, parse_duration

DEV = {"NOTIFY_AUTH_DEV_MODE": "true"}


def test_defaults_match_the_contract() -> None:
    config = load_config(DEV)
    assert (config.client_port, config.internal_port, config.metrics_port) == (8080, 8081, 9090)
    assert config.log_level == "info"
    assert config.shutdown_timeout == 30
    assert config.store_driver == "memory"
    assert config.postgres_automigrate is True
    assert config.jwt_leeway == 30
    assert config.live_connections_enabled is True
    assert config.live_heartbeat_interval == 30
    assert config.live_retry_max_attempts == 3
    assert config.live_retry_interval == 5
    assert config.allowed_origins == ()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("500ms", 0.5), ("2m", 120), ("1h30m", 5400), ("1.5s", 1.5), ("0s", 0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "s", "10x", "1m 2s", "-1s", "abc"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_every_variable_is_read() -> None:
    config = load_config(
        {
            "NOTIFY_CLIENT_PORT": "1",
            "NOTIFY_INTERNAL_PORT": "2",
            "NOTIFY_METRICS_PORT": "3",
            "NOTIFY_LOG_LEVEL": "DEBUG",
            "NOTIFY_SHUTDOWN_TIMEOUT": "5s",
            "NOTIFY_AUTH_JWT_SECRET": "s" * 32,
            "NOTIFY_AUTH_JWT_ISSUER": "iss",
            "NOTIFY_AUTH_JWT_AUDIENCE": "aud",
            "NOTIFY_AUTH_JWT_LEEWAY": "1m",
            "NOTIFY_INTERNAL_TOKEN": "tok",
            "NOTIFY_ALLOWED_ORIGINS": "https://a.example, https://b.example,",
            "NOTIFY_LIVE_CONNECTIONS_ENABLED": "false",
            "NOTIFY_LIVE_HEARTBEAT_INTERVAL": "250ms",
            "NOTIFY_LIVE_RETRY_MAX_ATTEMPTS": "7",
            "NOTIFY_LIVE_RETRY_INTERVAL": "2s",
        }
    )
    assert config == Config(
        client_port=1,
        internal_port=2,
        metrics_port=3,
        log_level="debug",
        shutdown_timeout=5,
        jwt_secret="s" * 32,
        jwt_issuer="iss",
        jwt_audience="aud",
        jwt_leeway=60,
        internal_token="tok",
        allowed_origins=("https://a.example", "https://b.example"),
        live_connections_enabled=False,
        live_heartbeat_interval=0.25,
        live_retry_max_attempts=7,
        live_retry_interval=2,
    )


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"NOTIFY_CLIENT_PORT": "70000"}, "NOTIFY_CLIENT_PORT"),
        ({"NOTIFY_METRICS_PORT": "-1"}, "NOTIFY_METRICS_PORT"),
        ({"NOTIFY_LOG_LEVEL": "loud"}, "NOTIFY_LOG_LEVEL"),
        ({"NOTIFY_LIVE_HEARTBEAT_INTERVAL": "0s"}, "NOTIFY_LIVE_HEARTBEAT_INTERVAL"),
        ({"NOTIFY_LIVE_RETRY_MAX_ATTEMPTS": "0"}, "NOTIFY_LIVE_RETRY_MAX_ATTEMPTS"),
        ({"NOTIFY_POSTGRES_AUTOMIGRATE": "perhaps"}, "NOTIFY_POSTGRES_AUTOMIGRATE"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config({**DEV, **env})
    assert str(error.value).startswith(variable)
    assert "\n" not in str(error.value)


def test_secrets_are_required_outside_dev_mode() -> None:
    with pytest.raises(ConfigError, match="NOTIFY_AUTH_JWT_SECRET"):
        load_config({})
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        load_config({"NOTIFY_AUTH_JWT_SECRET": "short", "NOTIFY_INTERNAL_TOKEN": "t"})
    with pytest.raises(ConfigError, match="NOTIFY_INTERNAL_TOKEN"):
        load_config({"NOTIFY_AUTH_JWT_SECRET": "s" * 32})
    assert load_config({"NOTIFY_AUTH_JWT_SECRET": "s" * 32, "NOTIFY_INTERNAL_TOKEN": "t"})
