"""Email over SMTP: one message per row, from the outbox (see notify.service.dispatcher).

``smtp://`` upgrades with STARTTLS whenever the server offers it; ``smtps://``
is TLS from the first byte; ``user:password@`` logs in (AUTH). The subject is
the title; the message has a text part and an HTML part (every value
HTML-escaped) with the body and the actions as links, or is rendered from
the per-category templates of ``NOTIFY_EMAIL_TEMPLATES``. The Message-ID is
derived from the row id, so a message sent twice after a crash carries the
same id and the receiving side can dedupe it.

SMTP's own answer decides what happens next: 4xx and broken connections are
transient (retried), 5xx is permanent (FAILED with the server's words).
"""

from __future__ import annotations

import html
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib
import jinja2

from notify.core.clock import Clock
from notify.core.model import Channel, Notification, Status
from notify.core.ports import Delivery, Receipt

DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class SmtpServer:
    host: str
    port: int
    implicit_tls: bool
    username: str = ""
    password: str = ""


def parse_smtp_url(url: str) -> SmtpServer:
    """``smtp://[user:password@]host[:port]`` (default 587, STARTTLS when offered) or
    ``smtps://…`` (default 465, TLS at once). Raises ValueError naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("names no host")
    implicit = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if implicit else 587)
    except ValueError:
        raise ValueError("has a bad port") from None
    return SmtpServer(
        parts.hostname,
        port,
        implicit,
        unquote(parts.username or ""),
        unquote(parts.password or ""),
    )


class EmailRenderer:
    """Builds the message for a row: built-in text and HTML, or the category's templates.

    Templates are ``<category>.html`` and ``<category>.txt`` (``default.*`` for
    rows whose category has none), rendered with ``n`` (the row),
    ``preferences_url``; HTML templates autoescape every value.
    """

    def __init__(self, sender: str, *, preferences_url: str = "", templates: str = "") -> None:
        self._sender = Address(addr_spec=sender)
        self._preferences_url = preferences_url
        self._env: jinja2.Environment | None = None
        if templates:
            self._env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(Path(templates)),
                autoescape=jinja2.select_autoescape(["html"], default_for_string=False),
                undefined=jinja2.StrictUndefined,
            )

    @property
    def domain(self) -> str:
        return self._sender.domain

    def message(self, row: Notification, to: Address) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = row.title
        message["Date"] = formatdate(row.created_at_ms / 1000, usegmt=True)
        message["Message-ID"] = message_id(row, self.domain)
        if self._preferences_url:
            message["List-Unsubscribe"] = f"<{self._preferences_url}>"
        text, page = self._render(row)
        message.set_content(text)
        message.add_alternative(page, subtype="html")
        return message

    def _render(self, row: Notification) -> tuple[str, str]:
        if self._env is not None:
            found = [self._template(row.category, kind) for kind in ("txt", "html")]
            if found[0] is not None and found[1] is not None:
                context = {"n": row, "preferences_url": self._preferences_url}
                return found[0].render(context), found[1].render(context)
        return self._text(row), self._html(row)

    def _template(self, category: str, kind: str) -> jinja2.Template | None:
        assert self._env is not None
        for name in (f"{category}.{kind}" if category else "", f"default.{kind}"):
            if name:
                try:
                    return self._env.get_template(name)
                except jinja2.TemplateNotFound:
                    continue
        return None

    def _text(self, row: Notification) -> str:
        lines = [row.title, "", row.body] if row.body else [row.title]
        for action in row.actions:
            lines.append(f"{action.label}: {action.url}")
        if self._preferences_url:
            lines += ["", f"Notification settings: {self._preferences_url}"]
        return "\n".join(lines) + "\n"

    def _html(self, row: Notification) -> str:
        e = html.escape
        parts = [f"<h1>{e(row.title)}</h1>"]
        if row.body:
            parts.append(f"<p>{e(row.body)}</p>")
        if row.actions:
            links = "".join(f'<li><a href="{e(a.url)}">{e(a.label)}</a></li>' for a in row.actions)
            parts.append(f"<ul>{links}</ul>")
        if self._preferences_url:
            parts.append(f'<p><a href="{e(self._preferences_url)}">Notification settings</a></p>')
        return "<!doctype html><html><body>" + "".join(parts) + "</body></html>\n"


def message_id(row: Notification, domain: str) -> str:
    """Stable per row: every (re)send of one row carries the same Message-ID."""
    return f"<{row.id}@{domain}>"


def parse_address(text: str) -> Address | None:
    """One bare address (``user@example.com``); None when it is not one."""
    if not text or any(c in text for c in '\r\n<>,;"() ') or text.count("@") != 1:
        return None
    try:
        address = Address(addr_spec=text)
    except (ValueError, IndexError):
        return None
    if not address.username or "." not in address.domain:
        return None
    return address


class EmailProvider:
    name = "email"
    channel = Channel.EMAIL

    def __init__(
        self,
        server: SmtpServer,
        renderer: EmailRenderer,
        clock: Clock,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._server = server
        self._renderer = renderer
        self._clock = clock
        self._timeout = timeout
        self._tls_context = tls_context

    async def send(self, deliveries: Sequence[Delivery]) -> list[Receipt]:
        return [await self._send(d) for d in deliveries]

    async def _send(self, delivery: Delivery) -> Receipt:
        to = parse_address(delivery.address)
        if to is None:
            return Receipt(Status.FAILED, reason="invalid email address")
        message = self._renderer.message(delivery.row, to)
        server = self._server
        try:
            await aiosmtplib.send(
                message,
                hostname=server.host,
                port=server.port,
                username=server.username or None,
                password=server.password or None,
                use_tls=server.implicit_tls,
                start_tls=False if server.implicit_tls else None,
                tls_context=self._tls_context,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]
            return _answer(first.code, first.message)
        except aiosmtplib.SMTPResponseException as exc:
            return _answer(exc.code, exc.message)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Receipt(Status.PENDING, reason=f"SMTP connection: {type(exc).__name__}")
        return Receipt(
            Status.DELIVERED,
            at_ms=self._clock.now_ms(),
            provider_message_id=str(message["Message-ID"]),
        )


def _answer(code: int, text: str) -> Receipt:
    reason = f"SMTP {code} {text}".strip()[:500]
    if 400 <= code < 500:
        return Receipt(Status.PENDING, reason=reason)
    return Receipt(Status.FAILED, reason=reason)
