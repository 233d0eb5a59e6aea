"""Email through the outbox and the dispatcher to a real SMTP server on loopback, on both
store drivers: STARTTLS and AUTH, implicit TLS, 421 retried with backoff, 550 FAILED at
once, an exhausted budget, a bad address, and what the message carries."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from pathlib import Path

import pytest

from notify.core.clock import ManualClock
from notify.core.model import Action, Channel, Notification, Status
from notify.delivery.backoff import Backoff
from notify.delivery.email import EmailProvider, EmailRenderer, SmtpServer
from notify.metrics import Metrics
from notify.service.dispatcher import Dispatcher, DispatchPolicy
from notify.store import Store
from notify.store.conformance import make_row
from tests.delivery_support import (  # noqa: F401  (the fixtures pg_dsn and store)
    SMTP_PASSWORD,
    SMTP_USER,
    Certificate,
    SmtpSink,
    pg_dsn_fixture,
    self_signed,
    smtp_server,
    store_fixture,
)

T0 = 1_700_000_000_000


@pytest.fixture(scope="module")
def cert() -> Certificate:
    return self_signed()


def provider(
    port: int,
    cert: Certificate | None,
    clock: ManualClock,
    *,
    implicit: bool = False,
    auth: bool = True,
    templates: str = "",
    preferences_url: str = "",
) -> EmailProvider:
    server = SmtpServer(
        "127.0.0.1", port, implicit, SMTP_USER if auth else "", SMTP_PASSWORD if auth else ""
    )
    renderer = EmailRenderer(
        "notify@example.com", preferences_url=preferences_url, templates=templates
    )
    return EmailProvider(
        server, renderer, clock, tls_context=cert.client_context() if cert else None
    )


def dispatcher(store: Store, email: EmailProvider, clock: ManualClock, **policy: int) -> Dispatcher:
    # random() == 1.0: every wait is exactly its bound (1 s, 2 s, 4 s ...).
    backoff = Backoff(1.0, random=lambda: 1.0)
    return Dispatcher(store, [email], clock, Metrics(), DispatchPolicy(backoff, **policy))


async def queue(store: Store, *rows: Notification) -> list[Notification]:
    return [s.row for s in await store.create_notifications(list(rows))]


def email_row(
    i: int = 0,
    address: str = "ann@example.com",
    title: str = "Hello",
    body: str = "",
    **fields: object,
) -> Notification:
    row = make_row(i, channel=Channel.EMAIL, created_at_ms=T0, address=address, **fields)
    row.title, row.body = title, body
    return row


async def row_of(store: Store, row: Notification) -> Notification:
    (found,) = await store.get_notifications(row.tenant_id, [row.id])
    return found


async def test_starttls_and_auth_deliver_a_text_and_html_message(
    store: Store, cert: Certificate, tmp_path: Path
) -> None:
    clock = ManualClock(T0)
    sink = SmtpSink()
    row = email_row(
        title="Invoice <ready> & due",
        body="Pay <b>now</b>",
        actions=(Action("pay", 'Pay "it"', "https://pay.example.com/?a=1&b=<2>"),),
    )
    async with smtp_server(sink, tls=cert.server_context(tmp_path)):
        email = provider(sink.port, cert, clock, preferences_url="https://app.example.com/prefs")
        (stored,) = await queue(store, row)
        assert await dispatcher(store, email, clock).tick() == 1
    assert sink.sessions == [(True, True)]  # upgraded with STARTTLS, then logged in
    (message,) = sink.messages
    assert message["Subject"] == "Invoice <ready> & due"
    assert message["To"] == "ann@example.com"
    assert message["Message-ID"] == f"<{stored.id}@example.com>"
    assert message["List-Unsubscribe"] == "<https://app.example.com/prefs>"
    text = message.get_body(("plain",))
    page = message.get_body(("html",))
    assert text is not None
    assert page is not None
    assert "Pay <b>now</b>" in text.get_content()
    assert "https://pay.example.com/?a=1&b=<2>" in text.get_content()
    html = page.get_content()
    assert "<h1>Invoice &lt;ready&gt; &amp; due</h1>" in html
    assert "Pay &lt;b&gt;now&lt;/b&gt;" in html
    assert '<a href="https://pay.example.com/?a=1&amp;b=&lt;2&gt;">Pay &quot;it&quot;</a>' in html
    done = await row_of(store, stored)
    assert (done.status, done.attempts, done.delivered_at_ms) == (Status.DELIVERED, 1, T0)
    assert done.provider_message_id == f"<{stored.id}@example.com>"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtps_implicit_tls(store: Store, cert: Certificate, tmp_path: Path) -> None:
    clock = ManualClock(T0)
    sink = SmtpSink()
    async with smtp_server(sink, tls=cert.server_context(tmp_path), implicit_tls=True):
        (stored,) = await queue(store, email_row())
        await dispatcher(store, provider(sink.port, cert, clock, implicit=True), clock).tick()
    assert sink.sessions == [(True, True)]
    assert (await row_of(store, stored)).status is Status.DELIVERED


async def test_421_twice_then_250_is_one_email_after_three_attempts(store: Store) -> None:
    clock = ManualClock(T0)
    sink = SmtpSink(script=deque(["421 4.3.2 try later", "421 4.3.2 try later"]))
    async with smtp_server(sink, auth=False):
        (stored,) = await queue(store, email_row())
        run = dispatcher(store, provider(sink.port, None, clock, auth=False), clock)
        assert await run.tick() == 1
        retried = await row_of(store, stored)
        assert (retried.status, retried.attempts) == (Status.PENDING, 1)
        assert retried.failure_reason == "SMTP 421 4.3.2 try later"
        clock.advance(0.999)
        assert await run.tick() == 0  # the first wait is 1 s
        clock.advance(0.001)
        assert await run.tick() == 1
        clock.advance(1.999)
        assert await run.tick() == 0  # the second is 2 s
        clock.advance(0.001)
        assert await run.tick() == 1
    assert sink.attempts == 3
    assert sink.message_ids() == [f"<{stored.id}@example.com>"]
    done = await row_of(store, stored)
    assert (done.status, done.attempts, done.failure_reason) == (Status.DELIVERED, 3, "")


async def test_550_is_failed_with_the_reason_and_never_retried(store: Store) -> None:
    clock = ManualClock(T0)
    sink = SmtpSink(refused={"gone@example.com"})
    async with smtp_server(sink, auth=False):
        (stored,) = await queue(store, email_row(address="gone@example.com"))
        run = dispatcher(store, provider(sink.port, None, clock, auth=False), clock)
        assert await run.tick() == 1
        clock.advance(3600)
        assert await run.tick() == 0
    failed = await row_of(store, stored)
    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert failed.failure_reason == "SMTP 550 5.1.1 no such mailbox here"
    assert sink.messages == []


async def test_server_down_for_the_whole_budget_is_failed(store: Store) -> None:
    clock = ManualClock(T0)
    sink = SmtpSink()
    async with smtp_server(sink, auth=False):
        port = sink.port  # then closed: nothing listens there any more
    (stored,) = await queue(store, email_row())
    run = dispatcher(store, provider(port, None, clock, auth=False), clock, max_attempts=3)
    for _ in range(3):
        assert await run.tick() == 1
        clock.advance(600)
    assert await run.tick() == 0
    failed = await row_of(store, stored)
    assert (failed.status, failed.attempts) == (Status.FAILED, 3)
    assert failed.failure_reason.startswith("gave up after 3 attempts: SMTP connection")


async def test_max_age_ends_retries(store: Store) -> None:
    clock = ManualClock(T0)
    sink = SmtpSink(script=deque(["451 busy"] * 10))
    async with smtp_server(sink, auth=False):
        (stored,) = await queue(store, email_row())
        run = dispatcher(
            store, provider(sink.port, None, clock, auth=False), clock, max_age_ms=2500
        )
        await run.tick()  # retry at +1 s
        clock.advance(1)
        await run.tick()  # the next would be at +3 s, past the 2.5 s budget
    failed = await row_of(store, stored)
    assert (failed.status, failed.attempts) == (Status.FAILED, 2)
    assert "too old to retry" in failed.failure_reason


async def test_no_address_and_a_bad_address_fail_without_a_send(store: Store) -> None:
    clock = ManualClock(T0)
    sink = SmtpSink()
    async with smtp_server(sink, auth=False):
        rows = await queue(store, email_row(0, address=""), email_row(1, address="not an address"))
        await dispatcher(store, provider(sink.port, None, clock, auth=False), clock).tick()
    none, bad = [await row_of(store, r) for r in rows]
    assert (none.status, none.failure_reason, none.attempts) == (
        Status.FAILED,
        "no email address",
        0,
    )
    assert (bad.status, bad.failure_reason) == (Status.FAILED, "invalid email address")
    assert sink.attempts == 0


async def test_category_templates_autoescape(store: Store, tmp_path: Path) -> None:
    (tmp_path / "billing.html").write_text("<p>Dear user: {{ n.title }}</p>")
    (tmp_path / "billing.txt").write_text("Dear user: {{ n.title }}")
    clock = ManualClock(T0)
    sink = SmtpSink()
    async with smtp_server(sink, auth=False):
        await queue(
            store,
            email_row(0, category="billing", title="<script>x</script>"),
            email_row(1, category="other", title="plain"),
        )
        email = provider(sink.port, None, clock, auth=False, templates=str(tmp_path))
        await dispatcher(store, email, clock).tick()
    by_subject = {str(m["Subject"]): m for m in sink.messages}
    templated = by_subject["<script>x</script>"]
    html = templated.get_body(("html",))
    text = templated.get_body(("plain",))
    assert html is not None
    assert text is not None
    assert html.get_content().strip() == "<p>Dear user: &lt;script&gt;x&lt;/script&gt;</p>"
    assert text.get_content().strip() == "Dear user: <script>x</script>"
    built_in = by_subject["plain"].get_body(("html",))
    assert built_in is not None
    assert "<h1>plain</h1>" in built_in.get_content()


async def test_concurrent_sends_are_bounded(store: Store) -> None:
    """At most ``concurrency`` SMTP transactions are open at once, across one tick."""
    clock = ManualClock(T0)
    open_now = peak = 0
    release = asyncio.Event()

    class Slow(SmtpSink):
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            nonlocal open_now, peak
            open_now += 1
            peak = max(peak, open_now)
            if peak == 3:
                release.set()
            await release.wait()
            open_now -= 1
            return await super().handle_DATA(server, session, envelope)

    sink = Slow()
    async with smtp_server(sink, auth=False):
        await queue(store, *(email_row(i) for i in range(7)))
        run = dispatcher(store, provider(sink.port, None, clock, auth=False), clock, concurrency=3)
        handled = 0
        while handled < 7:
            handled += await run.tick()
    assert peak == 3
    assert len(sink.messages) == 7


class Stuck(SmtpSink):
    """Holds every DATA until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.attempts += 1
        self.arrived.set()
        await self.release.wait()
        return await super().handle_DATA(server, session, envelope)


async def test_close_finishes_a_send_in_flight(store: Store) -> None:
    clock = ManualClock(T0)
    sink = Stuck()
    async with smtp_server(sink, auth=False):
        (stored,) = await queue(store, email_row())
        run = dispatcher(store, provider(sink.port, None, clock, auth=False), clock)
        run.start()
        await sink.arrived.wait()
        closing = asyncio.create_task(run.close(grace=30))
        sink.release.set()
        await closing
    assert (await row_of(store, stored)).status is Status.DELIVERED
    assert await store.claim_outbox(Channel.EMAIL, T0 + 10**9, 10, 1, str(uuid.uuid4())) == []


async def test_close_releases_a_send_that_does_not_finish_in_time(store: Store) -> None:
    clock = ManualClock(T0)
    sink = Stuck()
    async with smtp_server(sink, auth=False):
        (stored,) = await queue(store, email_row())
        run = dispatcher(store, provider(sink.port, None, clock, auth=False), clock)
        run.start()
        await sink.arrived.wait()
        await run.close(grace=0.05)
        # Released: claimable at once by another dispatcher, not only when the lease ends.
        again = await store.claim_outbox(Channel.EMAIL, T0, 10, 60_000, str(uuid.uuid4()))
        sink.release.set()
    assert [e.row.id for e in again] == [stored.id]
    assert (await row_of(store, stored)).status is Status.PENDING
