from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from notify.config import (
    VARIABLES,
    Config,
    ConfigError,
    check_production_secrets,
    help_text,
    load_config,
    parse_duration,
)

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
    assert config.retention == 0  # off: rows stay until deleted or expired


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("500ms", 0.5),
        ("2m", 120),
        ("1h30m", 5400),
        ("1.5s", 1.5),
        ("0s", 0),
        ("90d", 90 * 86400),
    ],
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
            "NOTIFY_RETENTION": "30d",
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
        retention=30 * 86400,
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
        ({"NOTIFY_RETENTION": "forever"}, "NOTIFY_RETENTION"),
        ({"NOTIFY_HTTP_WRITE_DELAY": "1s"}, "NOTIFY_HTTP_WRITE_DELAY"),
        ({"NOTIFY_HTTP_WRITE_DELAY": "soon"}, "NOTIFY_HTTP_WRITE_DELAY"),
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


STRONG = "s" * 32


@pytest.mark.parametrize(
    ("text", "level"), [("warn", "warning"), ("WARN", "warning"), ("Warning", "warning"),
                        ("ERROR", "error"), ("Debug", "debug")]
)  # fmt: skip
def test_log_levels_are_case_insensitive_and_warn_means_warning(text: str, level: str) -> None:
    assert load_config({**DEV, "NOTIFY_LOG_LEVEL": text}).log_level == level


@pytest.mark.parametrize(
    ("env", "variable", "says"),
    [
        ({"NOTIFY_CLIENT_PORT": "abc"}, "NOTIFY_CLIENT_PORT", "'abc' is not a port number"),
        ({"NOTIFY_INTERNAL_PORT": "80.5"}, "NOTIFY_INTERNAL_PORT", "not a port number"),
        ({"NOTIFY_LIVE_QUEUE_SIZE": "lots"}, "NOTIFY_LIVE_QUEUE_SIZE", "not a positive whole"),
        (
            {"NOTIFY_ALLOWED_ORIGINS": "localhost:5173"},
            "NOTIFY_ALLOWED_ORIGINS",
            "'localhost:5173' is not an origin like https://",
        ),
        (
            {"NOTIFY_ALLOWED_ORIGINS": "https://ok.example, app.example.com"},
            "NOTIFY_ALLOWED_ORIGINS",
            "'app.example.com' is not an origin",
        ),
        (
            {"NOTIFY_ALLOWED_ORIGINS": "https://app.example.com/inbox"},
            "NOTIFY_ALLOWED_ORIGINS",
            "with a path",
        ),
        (
            {"NOTIFY_POSTGRES_DSN": "mysql://u:hunter2@db/x"},
            "NOTIFY_POSTGRES_DSN",
            "mysql:// is not PostgreSQL",
        ),
        ({"NOTIFY_POSTGRES_DSN": "db:5432"}, "NOTIFY_POSTGRES_DSN", "no scheme is not PostgreSQL"),
        ({"NOTIFY_AUTH_JWT_ALGORITHMS": "none"}, "NOTIFY_AUTH_JWT_ALGORITHMS", "'none' is not"),
        (
            {"NOTIFY_AUTH_JWT_ALGORITHMS": "HS256"},
            "NOTIFY_AUTH_JWT_ALGORITHMS",
            "HS256 needs NOTIFY_AUTH_JWT_SECRET",
        ),
        (
            {"NOTIFY_AUTH_JWT_JWKS_URL": "http://idp.example/jwks.json"},
            "NOTIFY_AUTH_JWT_JWKS_URL",
            "must be an https:// URL",
        ),
        (
            {"NOTIFY_BIND_HOST": "127.0.0.1", "NOTIFY_HOST": "0.0.0.0"},
            "NOTIFY_BIND_HOST",
            "disagrees with NOTIFY_HOST",
        ),
    ],
)
def test_operator_mistakes_are_one_clear_line(
    env: dict[str, str], variable: str, says: str
) -> None:
    with pytest.raises(ConfigError) as error:
        load_config({**DEV, **env})
    message = str(error.value)
    assert message.startswith(f"{variable}: ")
    assert says in message
    assert "\n" not in message
    assert "invalid literal" not in message
    assert "hunter2" not in message


def test_origins_keep_exact_values_and_the_wildcard() -> None:
    config = load_config(
        {**DEV, "NOTIFY_ALLOWED_ORIGINS": "http://localhost:5173, https://app.example.com/, *"}
    )
    assert config.allowed_origins == ("http://localhost:5173", "https://app.example.com", "*")


def test_postgres_dsn_schemes() -> None:
    for dsn in ("postgresql://u:p@db:5432/x", "postgres://u@db/x", "POSTGRESQL://db/x"):
        assert load_config({**DEV, "NOTIFY_POSTGRES_DSN": dsn}).postgres_dsn == dsn


def test_dev_mode_binds_loopback_unless_told_otherwise() -> None:
    assert load_config(DEV).host == "127.0.0.1"
    assert load_config(
        {"NOTIFY_AUTH_JWT_SECRET": STRONG, "NOTIFY_INTERNAL_TOKEN": STRONG}
    ).host == ("0.0.0.0")
    assert load_config({**DEV, "NOTIFY_BIND_HOST": "0.0.0.0"}).host == "0.0.0.0"
    # NOTIFY_HOST is the older name and still works; agreeing values are fine.
    assert load_config({**DEV, "NOTIFY_HOST": "::"}).host == "::"
    assert load_config({**DEV, "NOTIFY_HOST": "::", "NOTIFY_BIND_HOST": "::"}).host == "::"


def test_key_sources_stand_in_for_the_secret() -> None:
    jwks = load_config(
        {"NOTIFY_AUTH_JWT_JWKS_URL": "https://idp.example/.well-known/jwks.json",
         "NOTIFY_INTERNAL_TOKEN": STRONG, "NOTIFY_AUTH_JWT_ALGORITHMS": "rs256, ES256,RS256"}
    )  # fmt: skip
    assert jwks.jwt_jwks_url == "https://idp.example/.well-known/jwks.json"
    assert jwks.jwt_algorithms == ("RS256", "ES256")
    pem = load_config(
        {"NOTIFY_AUTH_JWT_PUBLIC_KEY_FILE": "/keys/idp.pem", "NOTIFY_INTERNAL_TOKEN": STRONG}
    )
    assert pem.jwt_public_key_file == "/keys/idp.pem"
    local = load_config({**DEV, "NOTIFY_AUTH_JWT_JWKS_URL": "http://127.0.0.1:8000/jwks"})
    assert local.jwt_jwks_url == "http://127.0.0.1:8000/jwks"


def test_migrate_needs_no_secrets() -> None:
    config = load_config({"NOTIFY_POSTGRES_DSN": "postgresql://db/x"}, require_secrets=False)
    assert config.postgres_dsn == "postgresql://db/x"
    with pytest.raises(ConfigError, match="NOTIFY_POSTGRES_DSN"):
        load_config({"NOTIFY_POSTGRES_DSN": "mysql://db/x"}, require_secrets=False)


def shipped_placeholders() -> dict[str, str]:
    """Every secret value the deploy templates ship, read from the files themselves."""
    root = Path(__file__).resolve().parents[2] / "deploy"
    found: dict[str, str] = {}
    for line in (root / "env.example").read_text().splitlines():
        name, _, value = line.partition("=")
        if name in ("NOTIFY_AUTH_JWT_SECRET", "NOTIFY_INTERNAL_TOKEN"):
            found[f"env.example {name}"] = value
    secret = yaml.safe_load((root / "kubernetes" / "secret.yaml").read_text())
    for name in ("NOTIFY_AUTH_JWT_SECRET", "NOTIFY_INTERNAL_TOKEN"):
        found[f"secret.yaml {name}"] = secret["stringData"][name]
    return found


def test_production_start_refuses_the_shipped_placeholders() -> None:
    placeholders = shipped_placeholders()
    assert len(placeholders) == 4
    for where, value in placeholders.items():
        name = where.split()[1]
        other = (
            "NOTIFY_INTERNAL_TOKEN"
            if name == "NOTIFY_AUTH_JWT_SECRET"
            else "NOTIFY_AUTH_JWT_SECRET"
        )
        config = load_config({name: value, other: "r" * 40})  # load_config vets templates too
        with pytest.raises(ConfigError) as error:
            check_production_secrets(config)
        assert str(error.value).startswith(f"{name}: is the shipped placeholder"), where
        assert value not in str(error.value)


@pytest.mark.parametrize("token", ["a", "t" * 31, "é" * 15])
def test_production_start_refuses_a_short_internal_token(token: str) -> None:
    config = load_config({"NOTIFY_AUTH_JWT_SECRET": STRONG, "NOTIFY_INTERNAL_TOKEN": token})
    with pytest.raises(ConfigError, match=r"^NOTIFY_INTERNAL_TOKEN: must be at least 32 bytes"):
        check_production_secrets(config)


def test_production_start_accepts_strong_secrets_and_ignores_dev_mode() -> None:
    check_production_secrets(
        load_config({"NOTIFY_AUTH_JWT_SECRET": STRONG, "NOTIFY_INTERNAL_TOKEN": "t" * 32})
    )
    check_production_secrets(
        load_config({"NOTIFY_AUTH_JWT_JWKS_URL": "https://idp.example/jwks",
                     "NOTIFY_INTERNAL_TOKEN": "t" * 32})
    )  # fmt: skip
    check_production_secrets(load_config({**DEV, "NOTIFY_INTERNAL_TOKEN": "a"}))


def test_every_config_field_has_one_variable_and_help_lists_them() -> None:
    fields = [f.name for f in dataclasses.fields(Config)]
    assert sorted(v.field for v in VARIABLES) == sorted(fields)
    text = help_text()
    for variable in VARIABLES:
        assert f"  {variable.name}  [{variable.default}]" in text


def test_readme_documents_every_variable() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for variable in VARIABLES:
        assert f"`{variable.name}`" in table, variable.name
    assert "`NOTIFY_HOST`" in table


@pytest.mark.parametrize(("text", "seconds"), [("1ms", 0.001), ("0.5ms", 0.0005), ("0", 0.0)])
def test_the_write_delay_is_short_or_off(text: str, seconds: float) -> None:
    assert load_config({**DEV, "NOTIFY_HTTP_WRITE_DELAY": text}).http_write_delay == seconds
    assert load_config(DEV).http_write_delay == 0.001
