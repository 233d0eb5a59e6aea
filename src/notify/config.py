"""The ``NOTIFY_*`` environment turned into one typed, validated Config.

A bad or missing value raises ConfigError whose message is one line naming the
variable; ``notifyd`` prints it and exits non-zero. Secrets are required
unless dev mode is on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """One line naming the offending variable."""


@dataclass(frozen=True, slots=True)
class Config:
    client_port: int = 8080
    internal_port: int = 8081
    metrics_port: int = 9090
    host: str = "0.0.0.0"
    log_level: str = "info"
    shutdown_timeout: float = 30.0
    store_driver: str = "memory"
    postgres_dsn: str = ""
    postgres_automigrate: bool = True
    postgres_max_connections: int = 16
    postgres_connect_timeout: float = 10.0
    jwt_secret: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_leeway: float = 30.0
    internal_token: str = ""
    dev_mode: bool = False
    allowed_origins: tuple[str, ...] = ()
    live_connections_enabled: bool = True
    live_heartbeat_interval: float = 30.0
    live_retry_max_attempts: int = 3
    live_retry_interval: float = 5.0
    live_queue_size: int = 1024
    live_max_streams_per_user: int = 64
    live_max_stream_age: float = 0.0
    # --- hardening: limits checked before any work (docs/security.md)
    max_request_bytes: int = 4 * 1024 * 1024
    max_decompression_ratio: int = 100
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    http_idle_timeout: float = 75.0
    http_header_timeout: float = 10.0
    http_body_timeout: float = 30.0
    max_connections: int = 10_000
    max_connections_per_ip: int = 0
    live_max_streams: int = 10_000
    # --- end hardening


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_LOG_LEVELS = ("debug", "info", "warning", "error")
_DRIVERS = ("memory", "postgres")


def parse_duration(text: str) -> float:
    """Reads ``30s``, ``500ms``, ``2m``, ``1h30m`` (Go-style) as seconds."""
    text = text.strip()
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 500ms or 2m")
    return total


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true or false)")


def parse_port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError(f"{port} is not a port number (0-65535; 0 picks a free one)")
    return port


def parse_positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{value} is not a positive whole number")
    return value


def parse_positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return value


def parse_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return value

    return parse


def parse_origins(text: str) -> tuple[str, ...]:
    return tuple(origin.strip() for origin in text.split(",") if origin.strip())


def load_config(environ: Mapping[str, str]) -> Config:
    """Builds the Config from an environment mapping (usually ``os.environ``)."""

    def read(name: str, parse: Callable[[str], T], default: T) -> T:
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    defaults = Config()
    config = Config(
        client_port=read("NOTIFY_CLIENT_PORT", parse_port, defaults.client_port),
        internal_port=read("NOTIFY_INTERNAL_PORT", parse_port, defaults.internal_port),
        metrics_port=read("NOTIFY_METRICS_PORT", parse_port, defaults.metrics_port),
        host=read("NOTIFY_HOST", str.strip, defaults.host),
        log_level=read("NOTIFY_LOG_LEVEL", parse_choice(_LOG_LEVELS), defaults.log_level),
        shutdown_timeout=read(
            "NOTIFY_SHUTDOWN_TIMEOUT", parse_positive_duration, defaults.shutdown_timeout
        ),
        store_driver=read("NOTIFY_STORE_DRIVER", parse_choice(_DRIVERS), defaults.store_driver),
        postgres_dsn=read("NOTIFY_POSTGRES_DSN", str.strip, defaults.postgres_dsn),
        postgres_automigrate=read(
            "NOTIFY_POSTGRES_AUTOMIGRATE", parse_bool, defaults.postgres_automigrate
        ),
        postgres_max_connections=read(
            "NOTIFY_POSTGRES_MAX_CONNECTIONS", parse_positive_int, defaults.postgres_max_connections
        ),
        postgres_connect_timeout=read(
            "NOTIFY_POSTGRES_CONNECT_TIMEOUT",
            parse_positive_duration,
            defaults.postgres_connect_timeout,
        ),
        jwt_secret=read("NOTIFY_AUTH_JWT_SECRET", str, defaults.jwt_secret),
        jwt_issuer=read("NOTIFY_AUTH_JWT_ISSUER", str.strip, defaults.jwt_issuer),
        jwt_audience=read("NOTIFY_AUTH_JWT_AUDIENCE", str.strip, defaults.jwt_audience),
        jwt_leeway=read("NOTIFY_AUTH_JWT_LEEWAY", parse_duration, defaults.jwt_leeway),
        internal_token=read("NOTIFY_INTERNAL_TOKEN", str, defaults.internal_token),
        dev_mode=read("NOTIFY_AUTH_DEV_MODE", parse_bool, defaults.dev_mode),
        allowed_origins=read("NOTIFY_ALLOWED_ORIGINS", parse_origins, defaults.allowed_origins),
        live_connections_enabled=read(
            "NOTIFY_LIVE_CONNECTIONS_ENABLED", parse_bool, defaults.live_connections_enabled
        ),
        live_heartbeat_interval=read(
            "NOTIFY_LIVE_HEARTBEAT_INTERVAL",
            parse_positive_duration,
            defaults.live_heartbeat_interval,
        ),
        live_retry_max_attempts=read(
            "NOTIFY_LIVE_RETRY_MAX_ATTEMPTS", parse_positive_int, defaults.live_retry_max_attempts
        ),
        live_retry_interval=read(
            "NOTIFY_LIVE_RETRY_INTERVAL", parse_positive_duration, defaults.live_retry_interval
        ),
        live_queue_size=read(
            "NOTIFY_LIVE_QUEUE_SIZE", parse_positive_int, defaults.live_queue_size
        ),
        live_max_streams_per_user=read(
            "NOTIFY_LIVE_MAX_STREAMS_PER_USER",
            parse_positive_int,
            defaults.live_max_streams_per_user,
        ),
        live_max_stream_age=read(
            "NOTIFY_LIVE_MAX_STREAM_AGE", parse_duration, defaults.live_max_stream_age
        ),
        # --- hardening: limits checked before any work (docs/security.md)
        max_request_bytes=read(
            "NOTIFY_MAX_REQUEST_BYTES", parse_positive_int, defaults.max_request_bytes
        ),
        max_decompression_ratio=read(
            "NOTIFY_MAX_DECOMPRESSION_RATIO", parse_positive_int, defaults.max_decompression_ratio
        ),
        max_header_bytes=read(
            "NOTIFY_MAX_HEADER_BYTES", parse_positive_int, defaults.max_header_bytes
        ),
        max_headers=read("NOTIFY_MAX_HEADERS", parse_positive_int, defaults.max_headers),
        http_idle_timeout=read(
            "NOTIFY_HTTP_IDLE_TIMEOUT", parse_positive_duration, defaults.http_idle_timeout
        ),
        http_header_timeout=read(
            "NOTIFY_HTTP_HEADER_TIMEOUT", parse_positive_duration, defaults.http_header_timeout
        ),
        http_body_timeout=read(
            "NOTIFY_HTTP_BODY_TIMEOUT", parse_positive_duration, defaults.http_body_timeout
        ),
        max_connections=read(
            "NOTIFY_MAX_CONNECTIONS", parse_positive_int, defaults.max_connections
        ),
        max_connections_per_ip=read(
            "NOTIFY_MAX_CONNECTIONS_PER_IP", parse_limit, defaults.max_connections_per_ip
        ),
        live_max_streams=read(
            "NOTIFY_LIVE_MAX_STREAMS", parse_positive_int, defaults.live_max_streams
        ),
        # --- end hardening
    )
    _check_required(config)
    return config


def _check_required(config: Config) -> None:
    if config.store_driver == "postgres" and not config.postgres_dsn:
        raise ConfigError("NOTIFY_POSTGRES_DSN: required when NOTIFY_STORE_DRIVER=postgres")
    if config.dev_mode:
        return
    if not config.jwt_secret:
        raise ConfigError("NOTIFY_AUTH_JWT_SECRET: required unless NOTIFY_AUTH_DEV_MODE=true")
    if len(config.jwt_secret.encode()) < 32:
        raise ConfigError("NOTIFY_AUTH_JWT_SECRET: must be at least 32 bytes for HS256")
    if not config.internal_token:
        raise ConfigError("NOTIFY_INTERNAL_TOKEN: required unless NOTIFY_AUTH_DEV_MODE=true")


def parse_limit(text: str) -> int:
    """A cap where 0 means "no cap"."""
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} is not a whole number >= 0 (0 turns the limit off)")
    return value
