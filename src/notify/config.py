"""The ``NOTIFY_*`` environment turned into one typed, validated Config.

A bad or missing value raises ConfigError whose message is one line naming the
variable; ``notifyd`` prints it and exits non-zero. Secrets are required
unless dev mode is on. Every variable is listed once, in VARIABLES, so that
loading, ``notifyd --help`` and the README table cannot drift apart.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from notify.core.phone import e164, whatsapp_number
from notify.core.ratelimit import Rate
from notify.core.vapidkeys import check_subject, load_private_key

# Token buckets (notify.core.ratelimit): generous enough that no real client or
# producer meets them, low enough that one runaway caller cannot starve the rest.
DEFAULT_PRODUCER_RATE = Rate(20_000, 1.0)  # per internal token
DEFAULT_CLIENT_RATE = Rate(1_000, 1.0)  # per (tenant, user)
DEFAULT_RECIPIENT_RATE = Rate(100_000, 1.0)  # Notify recipients per tenant


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
    jwt_algorithms: tuple[str, ...] = ()
    jwt_public_key_file: str = ""
    jwt_jwks_url: str = ""
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
    live_max_replay: int = 10_000
    rate_limit_producer: Rate = DEFAULT_PRODUCER_RATE
    rate_limit_client: Rate = DEFAULT_CLIENT_RATE
    rate_limit_recipients: Rate = DEFAULT_RECIPIENT_RATE
    bus_driver: str = "auto"
    bus_reply_wait: float = 0.5
    bus_presence_ttl: float = 15.0
    # --- hardening: limits checked before any work (docs/security.md)
    max_request_bytes: int = 4 * 1024 * 1024
    max_decompression_ratio: int = 100
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    http_idle_timeout: float = 75.0
    http_header_timeout: float = 10.0
    http_write_delay: float = 0.001
    http_body_timeout: float = 30.0
    max_connections: int = 10_000
    max_connections_per_ip: int = 0
    live_max_streams: int = 10_000
    # --- end hardening
    delivery_backoff: float = 1.0
    delivery_max_attempts: int = 8
    delivery_max_age: float = 24 * 3600.0
    delivery_concurrency: int = 16
    delivery_lease: float = 60.0
    # Read rows read longer ago than this are purged (0: kept until deleted).
    retention: float = 0.0
    email_smtp_url: str = ""
    email_from: str = ""
    email_templates: str = ""
    preferences_url: str = ""
    webhook_secret: str = ""
    webhook_allow_private: bool = False
    fcm_credentials_file: str = ""
    fcm_endpoint: str = ""
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_whatsapp_from: str = ""
    twilio_base_url: str = ""
    # --- APNs (notify.delivery.apns): token-based auth with a .p8 key
    apns_key_file: str = ""
    apns_key_id: str = ""
    apns_team_id: str = ""
    apns_topic: str = ""
    apns_environment: str = "production"
    apns_endpoint: str = ""
    apns_ca_file: str = ""
    webpush_vapid_private_key: str = ""
    webpush_subject: str = ""
    webpush_allow_insecure: bool = False
    webpush_ttl: float = 24 * 3600.0
    workers: int = 1


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_LOG_LEVELS = ("debug", "info", "warning", "error")
# Other spellings operators bring from elsewhere (the Go reference says "warn").
_LOG_LEVEL_ALIASES = {"warn": "warning", "err": "error", "information": "info"}
_DRIVERS = ("memory", "postgres")
_BUS_DRIVERS = ("auto", "memory", "postgres")
_DSN_SCHEMES = ("postgresql", "postgres")
# Signature algorithms a key may be pinned to; "none" is never one of them.
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
JWT_ALGORITHMS = HMAC_ALGORITHMS + ASYMMETRIC_ALGORITHMS
# Dev mode accepts unsigned tokens, so it listens only on this machine unless told otherwise.
DEV_HOST = "127.0.0.1"
PRODUCTION_HOST = "0.0.0.0"
MIN_SECRET_BYTES = 32
# The values deploy/env.example and deploy/kubernetes/secret.yaml ship; every
# shipped placeholder is marked with this prefix.
PLACEHOLDER_MARK = "CHANGE-ME"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_APNS_ENVIRONMENTS = ("production", "sandbox")
MAX_WEBPUSH_TTL_S = 28 * 24 * 3600


def parse_duration(text: str) -> float:
    """Reads ``30s``, ``500ms``, ``2m``, ``1h30m`` (Go-style), or ``90d``, as seconds."""
    text = text.strip()
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{text!r} is not a duration like 30s, 500ms, 2m or 90d")
    return total


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (true or false)")


def _whole_number(text: str, what: str) -> int:
    """int() without its 'invalid literal for int() with base 10' message."""
    stripped = text.strip()
    if not re.fullmatch(r"[+-]?\d+", stripped):
        raise ValueError(f"{text!r} is not {what}")
    return int(stripped)


def parse_port(text: str) -> int:
    what = "a port number (0-65535; 0 picks a free one)"
    port = _whole_number(text, what)
    if not 0 <= port <= 65535:
        raise ValueError(f"{port} is not {what}")
    return port


def parse_positive_int(text: str) -> int:
    value = _whole_number(text, "a positive whole number")
    if value < 1:
        raise ValueError(f"{value} is not a positive whole number")
    return value


MAX_WORKERS = 64


def parse_workers(text: str) -> int:
    """A count of serving processes, or ``auto``: one per CPU this process may run on."""
    if text.strip().lower() == "auto":
        return min(cpu_count(), MAX_WORKERS)
    what = f"a number of workers from 1 to {MAX_WORKERS}, or auto"
    value = _whole_number(text, what)
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"{value} is not {what}")
    return value


def cpu_count() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse_limit(text: str) -> int:
    """A cap where 0 means "no cap"."""
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} is not a whole number >= 0 (0 turns the limit off)")
    return value


def parse_positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return value


MAX_WRITE_DELAY_S = 0.05


def parse_write_delay(text: str) -> float:
    """A duration such as `1ms` or `0.5ms`, at most `50ms`; `0` sends every write at once."""
    value = parse_duration("0s" if text.strip() == "0" else text)
    if value > MAX_WRITE_DELAY_S:
        raise ValueError(f"{text!r} is longer than 50ms (0 sends every write at once)")
    return value


def parse_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return value

    return parse


def parse_log_level(text: str) -> str:
    """Case-insensitive; ``warn`` (and a few other common spellings) mean the same level."""
    lowered = text.strip().lower()
    return parse_choice(_LOG_LEVELS)(_LOG_LEVEL_ALIASES.get(lowered, lowered))


def parse_origins(text: str) -> tuple[str, ...]:
    """Exact origins (scheme://host[:port]) or ``*``; anything else could never match."""
    origins = tuple(origin.strip() for origin in text.split(",") if origin.strip())
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{origin!r} is not an origin like https://app.example.com (scheme://host[:port])"
            )
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{origin!r} is an origin with a path; give scheme://host[:port]")
    return tuple(origin.rstrip("/") if origin != "*" else origin for origin in origins)


def parse_dsn(text: str) -> str:
    """A PostgreSQL URL; the message names only the scheme, never the password."""
    dsn = text.strip()
    scheme = dsn.split("://", 1)[0].lower() if "://" in dsn else ""
    if scheme not in _DSN_SCHEMES:
        shown = f"{scheme}://" if scheme else "no scheme"
        raise ValueError(
            f"{shown} is not PostgreSQL; give postgresql://user:password@host:5432/database"
        )
    return dsn


def parse_algorithms(text: str) -> tuple[str, ...]:
    by_upper = {name.upper(): name for name in JWT_ALGORITHMS}
    chosen: list[str] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name = by_upper.get(item.upper())
        if name is None:
            raise ValueError(f"{item!r} is not one of {', '.join(JWT_ALGORITHMS)}")
        if name not in chosen:
            chosen.append(name)
    return tuple(chosen)


def parse_jwks_url(text: str) -> str:
    """https, or http to this machine only: the keys decide who may call."""
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return url
    raise ValueError(f"{url!r} must be an https:// URL (http:// only to localhost)")


def parse_text(text: str) -> str:
    return text.strip()


def parse_secret(text: str) -> str:
    return text


def parse_smtp_url(text: str) -> str:
    """The message names the scheme only, never the password."""
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("must be smtp://[user:password@]host[:port] or smtps://...")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError("has a bad port") from None
    return url


def parse_email_address(text: str) -> str:
    address = text.strip()
    if not re.fullmatch(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+", address):
        raise ValueError(f"{address!r} is not an address like notify@example.com")
    return address


def parse_http_url(text: str) -> str:
    url = text.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s):// URL")
    return url


def parse_webhook_secret(text: str) -> str:
    """``whsec_`` and base64 (the Standard Webhooks form); the message never shows it."""
    secret = text.strip()
    try:
        key = base64.b64decode(secret.removeprefix("whsec_") + "==", validate=False)
    except (binascii.Error, ValueError):
        raise ValueError("is not base64 (whsec_ followed by base64)") from None
    if len(key) < 24:
        raise ValueError("must be at least 24 bytes (openssl rand -base64 32 makes one)")
    return secret


def parse_provider_url(text: str) -> str:
    """A push or SMS API's base URL: https, or http to this machine only (test servers)."""
    url = text.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return url
    raise ValueError(f"{url!r} must be an https:// URL (http:// only to localhost)")


def parse_twilio_sid(text: str) -> str:
    sid = text.strip()
    if not re.fullmatch(r"AC[0-9a-fA-F]{32}", sid):
        raise ValueError("is not an Account SID (AC and 32 hex digits, from the Twilio console)")
    return sid


def parse_twilio_from(text: str) -> str:
    """An E.164 sender number, or a Messaging Service SID (MG and 32 hex digits)."""
    value = text.strip()
    if e164(value) or re.fullmatch(r"MG[0-9a-fA-F]{32}", value):
        return value
    raise ValueError(f"{value!r} is not an E.164 number like +14155550123 or an MG... SID")


def parse_whatsapp_from(text: str) -> str:
    number = whatsapp_number(text.strip())
    if number is None:
        raise ValueError(f"{text.strip()!r} is not an E.164 number like +14155550123")
    return number


def parse_apple_id(text: str) -> str:
    """A 10-character Team ID or Key ID, as Apple's developer site shows them."""
    value = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9]{10}", value):
        raise ValueError(f"{value!r} is not a 10-character Apple ID like ABCDE12345")
    return value


def parse_https_origin(text: str) -> str:
    """``https://host[:port]``: a server to talk TLS to, no path."""
    url = text.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.path or parts.query:
        raise ValueError(f"{url!r} is not an https://host[:port] URL")
    try:
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        raise ValueError(f"{url!r} has a bad port") from None
    return url


def parse_vapid_private_key(text: str) -> str:
    """Checked at load (the message never shows the key); the Web Push sender loads it."""
    load_private_key(text)
    return text.strip()


def parse_webpush_ttl(text: str) -> float:
    seconds = parse_duration(text)
    if seconds > MAX_WEBPUSH_TTL_S:
        raise ValueError("must be at most 28 days (push services keep a push no longer)")
    return seconds


@dataclass(frozen=True, slots=True)
class Variable:
    """One NOTIFY_* variable: the Config field it fills, how it reads, its default as shown."""

    name: str
    field: str
    parse: Callable[[str], Any]
    default: str
    meaning: str


VARIABLES: tuple[Variable, ...] = (
    Variable("NOTIFY_CLIENT_PORT", "client_port", parse_port, "8080", "client API port"),
    Variable("NOTIFY_INTERNAL_PORT", "internal_port", parse_port, "8081", "internal API port"),
    Variable("NOTIFY_METRICS_PORT", "metrics_port", parse_port, "9090", "health/metrics port"),
    Variable(
        "NOTIFY_BIND_HOST", "host", parse_text, "0.0.0.0 (127.0.0.1 in dev mode)",
        "address every listener binds (NOTIFY_HOST is its older name)",
    ),
    Variable(
        "NOTIFY_LOG_LEVEL", "log_level", parse_log_level, "info",
        "debug, info, warning (or warn), error",
    ),
    Variable(
        "NOTIFY_SHUTDOWN_TIMEOUT", "shutdown_timeout", parse_positive_duration, "30s",
        "longest SIGTERM drain",
    ),
    Variable(
        "NOTIFY_STORE_DRIVER", "store_driver", parse_choice(_DRIVERS), "memory",
        "memory or postgres",
    ),
    Variable(
        "NOTIFY_POSTGRES_DSN", "postgres_dsn", parse_dsn, "(required for postgres)",
        "postgresql://user:password@host:5432/database",
    ),
    Variable(
        "NOTIFY_POSTGRES_AUTOMIGRATE", "postgres_automigrate", parse_bool, "true",
        "apply pending migrations on start",
    ),
    Variable(
        "NOTIFY_POSTGRES_MAX_CONNECTIONS", "postgres_max_connections", parse_positive_int, "16",
        "connection pool size",
    ),
    Variable(
        "NOTIFY_POSTGRES_CONNECT_TIMEOUT", "postgres_connect_timeout", parse_positive_duration,
        "10s", "how long start-up retries an unreachable database",
    ),
    Variable(
        "NOTIFY_AUTH_JWT_SECRET", "jwt_secret", parse_secret, "(unset)",
        "HMAC secret for HS256 client JWTs, 32+ bytes",
    ),
    Variable(
        "NOTIFY_AUTH_JWT_ALGORITHMS", "jwt_algorithms", parse_algorithms, "(from the keys)",
        "accepted JWT algorithms, comma-separated",
    ),
    Variable(
        "NOTIFY_AUTH_JWT_PUBLIC_KEY_FILE", "jwt_public_key_file", parse_text, "(unset)",
        "PEM file of public keys (RSA, EC, Ed25519)",
    ),
    Variable(
        "NOTIFY_AUTH_JWT_JWKS_URL", "jwt_jwks_url", parse_jwks_url, "(unset)",
        "JWKS URL of the identity provider",
    ),
    Variable("NOTIFY_AUTH_JWT_ISSUER", "jwt_issuer", parse_text, "(unset)", "required iss"),
    Variable("NOTIFY_AUTH_JWT_AUDIENCE", "jwt_audience", parse_text, "(unset)", "required aud"),
    Variable(
        "NOTIFY_AUTH_JWT_LEEWAY", "jwt_leeway", parse_duration, "30s",
        "clock skew allowed on exp/nbf",
    ),
    Variable(
        "NOTIFY_INTERNAL_TOKEN", "internal_token", parse_secret, "(required)",
        "producers' shared token, 32+ bytes",
    ),
    Variable(
        "NOTIFY_AUTH_DEV_MODE", "dev_mode", parse_bool, "false",
        "accept dev tokens, skip the internal token",
    ),
    Variable(
        "NOTIFY_ALLOWED_ORIGINS", "allowed_origins", parse_origins, "(unset)",
        "CORS origins, comma-separated",
    ),
    Variable(
        "NOTIFY_LIVE_CONNECTIONS_ENABLED", "live_connections_enabled", parse_bool, "true",
        "false makes StreamEvents unimplemented",
    ),
    Variable(
        "NOTIFY_LIVE_HEARTBEAT_INTERVAL", "live_heartbeat_interval", parse_positive_duration,
        "30s", "heartbeat period on every stream",
    ),
    Variable(
        "NOTIFY_LIVE_QUEUE_SIZE", "live_queue_size", parse_positive_int, "1024",
        "events a stream may fall behind",
    ),
    Variable(
        "NOTIFY_LIVE_RETRY_MAX_ATTEMPTS", "live_retry_max_attempts", parse_positive_int, "3",
        "data-change redeliveries",
    ),
    Variable(
        "NOTIFY_LIVE_RETRY_INTERVAL", "live_retry_interval", parse_positive_duration, "5s",
        "data-change redelivery period",
    ),
    Variable(
        "NOTIFY_LIVE_MAX_STREAMS_PER_USER", "live_max_streams_per_user", parse_positive_int,
        "64", "open streams per (tenant, user)",
    ),
    Variable(
        "NOTIFY_LIVE_MAX_STREAM_AGE", "live_max_stream_age", parse_duration, "0 (off)",
        "end streams cleanly after this age",
    ),
    Variable(
        "NOTIFY_LIVE_MAX_REPLAY", "live_max_replay", parse_positive_int, "10000",
        "missed notifications a resuming stream may replay; beyond, out_of_range",
    ),
    Variable(
        "NOTIFY_RATE_LIMIT_PRODUCER", "rate_limit_producer", Rate.parse,
        str(DEFAULT_PRODUCER_RATE), "internal-port calls per internal token (100/s, 3000/m, off)",
    ),
    Variable(
        "NOTIFY_RATE_LIMIT_CLIENT", "rate_limit_client", Rate.parse, str(DEFAULT_CLIENT_RATE),
        "client-port calls (and stream opens) per (tenant, user)",
    ),
    Variable(
        "NOTIFY_RATE_LIMIT_RECIPIENTS", "rate_limit_recipients", Rate.parse,
        str(DEFAULT_RECIPIENT_RATE), "Notify recipients per tenant",
    ),
    Variable(
        "NOTIFY_BUS", "bus_driver", parse_choice(_BUS_DRIVERS), "auto",
        "auto (postgres with the postgres store), memory (one replica) or postgres",
    ),
    Variable(
        "NOTIFY_BUS_REPLY_WAIT", "bus_reply_wait", parse_positive_duration, "500ms",
        "longest a Notify waits for other replicas' delivery replies",
    ),
    Variable(
        "NOTIFY_BUS_PRESENCE_TTL", "bus_presence_ttl", parse_positive_duration, "15s",
        "a replica that stops heartbeating is forgotten after this",
    ),
    # Limits checked before any work (docs/security.md).
    Variable(
        "NOTIFY_MAX_REQUEST_BYTES", "max_request_bytes", parse_positive_int, "4194304",
        "request body cap, counted as it streams in and after decompression",
    ),
    Variable(
        "NOTIFY_MAX_DECOMPRESSION_RATIO", "max_decompression_ratio", parse_positive_int, "100",
        "largest decompressed/compressed size ratio accepted",
    ),
    Variable(
        "NOTIFY_MAX_HEADER_BYTES", "max_header_bytes", parse_positive_int, "16384",
        "total size of a request's headers",
    ),
    Variable("NOTIFY_MAX_HEADERS", "max_headers", parse_positive_int, "100", "headers per request"),
    Variable(
        "NOTIFY_HTTP_IDLE_TIMEOUT", "http_idle_timeout", parse_positive_duration, "75s",
        "an idle keep-alive connection is closed after this",
    ),
    Variable(
        "NOTIFY_HTTP_WRITE_DELAY", "http_write_delay", parse_write_delay, "1ms",
        "HTTP/1.1 answers wait at most this to leave together (0: each at once)",
    ),
    Variable(
        "NOTIFY_HTTP_HEADER_TIMEOUT", "http_header_timeout", parse_positive_duration, "10s",
        "a request's head must arrive within this (slowloris)",
    ),
    Variable(
        "NOTIFY_HTTP_BODY_TIMEOUT", "http_body_timeout", parse_positive_duration, "30s",
        "a request's body must arrive within this",
    ),
    Variable(
        "NOTIFY_MAX_CONNECTIONS", "max_connections", parse_positive_int, "10000",
        "open connections per process on the API ports",
    ),
    Variable(
        "NOTIFY_MAX_CONNECTIONS_PER_IP", "max_connections_per_ip", parse_limit, "0 (off)",
        "open connections per client address (off: behind a proxy all share one)",
    ),
    Variable(
        "NOTIFY_LIVE_MAX_STREAMS", "live_max_streams", parse_positive_int, "10000",
        "open streams per process, all users together",
    ),
    Variable(
        "NOTIFY_DELIVERY_BACKOFF", "delivery_backoff", parse_positive_duration, "1s",
        "first retry wait of an external send; doubles each time (full jitter, at most 10m)",
    ),
    Variable(
        "NOTIFY_DELIVERY_MAX_ATTEMPTS", "delivery_max_attempts", parse_positive_int, "8",
        "sends of one external row before it is FAILED",
    ),
    Variable(
        "NOTIFY_DELIVERY_MAX_AGE", "delivery_max_age", parse_positive_duration, "24h",
        "no retry later than this after a row first fell due",
    ),
    Variable(
        "NOTIFY_DELIVERY_CONCURRENCY", "delivery_concurrency", parse_positive_int, "16",
        "sends in flight per provider and process",
    ),
    Variable(
        "NOTIFY_DELIVERY_LEASE", "delivery_lease", parse_positive_duration, "1m",
        "how long a claimed send is held; a dead process's sends are retried after it",
    ),
    Variable(
        "NOTIFY_RETENTION", "retention", parse_duration, "0 (off)",
        "purge rows read longer ago than this, e.g. 90d (swept every minute)",
    ),
    Variable(
        "NOTIFY_EMAIL_SMTP_URL", "email_smtp_url", parse_smtp_url, "(unset: no email)",
        "smtp://[user:password@]host[:port] (STARTTLS when offered) or smtps://",
    ),
    Variable(
        "NOTIFY_EMAIL_FROM", "email_from", parse_email_address, "(required with SMTP)",
        "the From address of every email",
    ),
    Variable(
        "NOTIFY_EMAIL_TEMPLATES", "email_templates", parse_text, "(unset)",
        "folder of Jinja2 templates, <category>.html and .txt (default.* otherwise)",
    ),
    Variable(
        "NOTIFY_PREFERENCES_URL", "preferences_url", parse_http_url, "(unset)",
        "where users change preferences: emails' List-Unsubscribe and footer link",
    ),
    Variable(
        "NOTIFY_WEBHOOK_SECRET", "webhook_secret", parse_webhook_secret, "(unset: no webhooks)",
        "Standard Webhooks signing secret (whsec_ and base64 of 24+ bytes)",
    ),
    Variable(
        "NOTIFY_WEBHOOK_ALLOW_PRIVATE", "webhook_allow_private", parse_bool, "false",
        "allow webhooks to loopback, private and link-local addresses",
    ),
    Variable(
        "NOTIFY_FCM_CREDENTIALS_FILE", "fcm_credentials_file", parse_text, "(unset: no FCM)",
        "Firebase service-account JSON key file (Android pushes over FCM HTTP v1)",
    ),
    Variable(
        "NOTIFY_FCM_ENDPOINT", "fcm_endpoint", parse_provider_url, "https://fcm.googleapis.com",
        "FCM API base URL (https://, or http:// to localhost for tests)",
    ),
    Variable(
        "NOTIFY_TWILIO_ACCOUNT_SID", "twilio_account_sid", parse_twilio_sid, "(unset: no SMS)",
        "Twilio Account SID (AC...) for SMS and WhatsApp",
    ),
    Variable(
        "NOTIFY_TWILIO_AUTH_TOKEN", "twilio_auth_token", parse_secret, "(required with the SID)",
        "Twilio auth token",
    ),
    Variable(
        "NOTIFY_TWILIO_FROM", "twilio_from", parse_twilio_from, "(unset: no SMS)",
        "SMS sender: an E.164 number or a Messaging Service SID (MG...)",
    ),
    Variable(
        "NOTIFY_TWILIO_WHATSAPP_FROM", "twilio_whatsapp_from", parse_whatsapp_from,
        "(unset: no WhatsApp)", "WhatsApp sender, an E.164 number",
    ),
    Variable(
        "NOTIFY_TWILIO_BASE_URL", "twilio_base_url", parse_provider_url, "https://api.twilio.com",
        "Twilio API base URL (https://, or http:// to localhost for tests)",
    ),
    Variable(
        "NOTIFY_APNS_KEY_FILE", "apns_key_file", parse_text, "(unset: no APNs)",
        "the APNs auth key (.p8, ES256) from Apple's developer site",
    ),
    Variable(
        "NOTIFY_APNS_KEY_ID", "apns_key_id", parse_apple_id, "(required with APNs)",
        "the key's 10-character Key ID",
    ),
    Variable(
        "NOTIFY_APNS_TEAM_ID", "apns_team_id", parse_apple_id, "(required with APNs)",
        "the 10-character Team ID the key belongs to",
    ),
    Variable(
        "NOTIFY_APNS_TOPIC", "apns_topic", parse_text, "(required with APNs)",
        "the iOS app's bundle ID, e.g. com.example.app",
    ),
    Variable(
        "NOTIFY_APNS_ENVIRONMENT", "apns_environment", parse_choice(_APNS_ENVIRONMENTS),
        "production", "production (api.push.apple.com) or sandbox (development builds)",
    ),
    Variable(
        "NOTIFY_APNS_ENDPOINT", "apns_endpoint", parse_https_origin, "(from the environment)",
        "another APNs server, https://host[:port] (a test server)",
    ),
    Variable(
        "NOTIFY_APNS_CA_FILE", "apns_ca_file", parse_text, "(certifi's CAs)",
        "PEM bundle of the CAs to trust for APNs instead (a test server, a TLS proxy)",
    ),
    Variable(
        "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY", "webpush_vapid_private_key", parse_vapid_private_key,
        "(unset: no web push)", "VAPID P-256 private key, PEM or base64url (notifyd vapid-keys)",
    ),
    Variable(
        "NOTIFY_WEBPUSH_SUBJECT", "webpush_subject", check_subject, "(required with the key)",
        "VAPID contact the push services see: mailto:ops@example.com or https://...",
    ),
    Variable(
        "NOTIFY_WEBPUSH_TTL", "webpush_ttl", parse_webpush_ttl, "24h",
        "how long a push service keeps a push for an offline browser (a row's expiry shortens it)",
    ),
    Variable(
        "NOTIFY_WEBPUSH_ALLOW_INSECURE", "webpush_allow_insecure", parse_bool, "false",
        "accept http:// subscription endpoints on loopback and send to them (tests only)",
    ),
    Variable(
        "NOTIFY_WORKERS", "workers", parse_workers, "1",
        f"serving processes on the same ports (auto: one per CPU; at most {MAX_WORKERS})",
    ),
)  # fmt: skip
# The older name of NOTIFY_BIND_HOST, still read; setting both to different values is an error.
HOST_ALIAS = "NOTIFY_HOST"


def load_config(environ: Mapping[str, str], *, require_secrets: bool = True) -> Config:
    """Builds the Config from an environment mapping (usually ``os.environ``).

    ``require_secrets=False`` is for commands that never authenticate anyone
    (``notifyd migrate``): they need no JWT key and no internal token.
    """

    def read(variable: Variable, name: str | None = None) -> Any:
        name = name or variable.name
        raw = environ.get(name)
        if raw is None or raw.strip() == "":
            return None
        try:
            return variable.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{name}: {exc}") from None

    values: dict[str, Any] = {}
    for variable in VARIABLES:
        value = read(variable)
        if variable.field == "host":
            value = _host(value, read(variable, HOST_ALIAS))
        if value is not None:
            values[variable.field] = value
    if "host" not in values and values.get("dev_mode", False):
        values["host"] = DEV_HOST
    config = Config(**values)
    _check_required(config, require_secrets=require_secrets)
    return config


def _host(bind_host: str | None, alias: str | None) -> str | None:
    if bind_host is not None and alias is not None and bind_host != alias:
        raise ConfigError(
            f"NOTIFY_BIND_HOST: {bind_host!r} disagrees with {HOST_ALIAS}={alias!r}; set only one"
        )
    return bind_host if bind_host is not None else alias


def _check_required(config: Config, *, require_secrets: bool) -> None:
    if config.email_smtp_url and not config.email_from:
        raise ConfigError("NOTIFY_EMAIL_FROM: required when NOTIFY_EMAIL_SMTP_URL is set")
    if config.store_driver == "postgres" and not config.postgres_dsn:
        raise ConfigError("NOTIFY_POSTGRES_DSN: required when NOTIFY_STORE_DRIVER=postgres")
    if config.bus_driver == "postgres" and config.store_driver != "postgres":
        raise ConfigError(
            "NOTIFY_BUS: postgres needs NOTIFY_STORE_DRIVER=postgres (the bus fetches rows from it)"
        )
    if config.workers > 1 and config.store_driver != "postgres":
        raise ConfigError(
            f"NOTIFY_WORKERS: {config.workers} workers need NOTIFY_STORE_DRIVER=postgres"
            " (the memory store lives in one process)"
        )
    if config.workers > 1 and config.bus_driver == "memory":
        raise ConfigError(
            f"NOTIFY_WORKERS: {config.workers} workers need NOTIFY_BUS=auto or postgres"
            " (the memory bus does not cross processes)"
        )
    hmac_algorithms = [a for a in config.jwt_algorithms if a in HMAC_ALGORITHMS]
    if hmac_algorithms and not config.jwt_secret:
        raise ConfigError(
            f"NOTIFY_AUTH_JWT_ALGORITHMS: {hmac_algorithms[0]} needs NOTIFY_AUTH_JWT_SECRET"
        )
    if config.dev_mode or not require_secrets:
        return
    if not (config.jwt_secret or config.jwt_public_key_file or config.jwt_jwks_url):
        raise ConfigError(
            "NOTIFY_AUTH_JWT_SECRET: required unless NOTIFY_AUTH_DEV_MODE=true"
            " (or give NOTIFY_AUTH_JWT_PUBLIC_KEY_FILE or NOTIFY_AUTH_JWT_JWKS_URL)"
        )
    if config.jwt_secret and len(config.jwt_secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"NOTIFY_AUTH_JWT_SECRET: must be at least {MIN_SECRET_BYTES} bytes for HS256"
        )
    if not config.internal_token:
        raise ConfigError("NOTIFY_INTERNAL_TOKEN: required unless NOTIFY_AUTH_DEV_MODE=true")


def check_production_secrets(config: Config) -> None:
    """What ``notifyd serve`` demands before it accepts traffic outside dev mode.

    Stricter than load_config, which also vets configurations that will not
    serve (the deploy templates with their placeholders): no secret may be a
    shipped placeholder, and the internal token must be as long as the JWT secret.
    """
    if config.dev_mode:
        return
    for name, value in (
        ("NOTIFY_AUTH_JWT_SECRET", config.jwt_secret),
        ("NOTIFY_INTERNAL_TOKEN", config.internal_token),
    ):
        if not value:
            continue
        if PLACEHOLDER_MARK.lower() in value.lower():
            raise ConfigError(
                f"{name}: is the shipped placeholder; generate one (openssl rand -hex 32)"
            )
        if len(value.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"{name}: must be at least {MIN_SECRET_BYTES} bytes"
                " (openssl rand -hex 32 makes one)"
            )


def help_text() -> str:
    """The variables, their defaults and meanings, for ``notifyd --help``."""
    return "\n".join(f"  {v.name}  [{v.default}]\n      {v.meaning}" for v in VARIABLES)
