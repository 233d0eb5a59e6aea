"""A stand-in for Twilio's Messages API: ``POST /2010-04-01/Accounts/{sid}/Messages.json``.

It checks what Twilio checks first (basic auth with the Account SID and auth
token, a form with ``To``, ``Body`` and exactly one of ``From`` /
``MessagingServiceSid``, an E.164 ``To``, WhatsApp numbers on both ends or
neither, the 1600-character body limit) and answers the way Twilio does: 201
with a message SID, or an error body with Twilio's code. A script overrides
the next answers (429 with Retry-After, 503, ...).
"""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import orjson

from tests.http_stub import Answer, Request, http_server

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-" + "9f3e" * 4
SMS_FROM = "+15005550006"
WHATSAPP_FROM = "+14155238886"
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def twilio_error(status: int, code: int, message: str, **headers: str) -> Answer:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return status, {"content-type": "application/json", **headers}, orjson.dumps(body)


@dataclass
class TwilioServer:
    script: deque[Answer] = field(default_factory=deque)
    unsubscribed: set[str] = field(default_factory=set)  # replied STOP: 21610
    messages: list[dict[str, str]] = field(default_factory=list)
    sids: list[str] = field(default_factory=list)
    attempts: int = 0
    unauthorized: int = 0
    url: str = ""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int) -> None:
        """Until ``count`` messages have been accepted."""
        while len(self.messages) < count:
            self.arrived.clear()
            await self.arrived.wait()

    async def handle(self, request: Request) -> Answer:
        self.attempts += 1
        if (request.method, request.path) != (
            "POST",
            f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        ):
            return twilio_error(404, 20404, "The requested resource was not found")
        expected = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            self.unauthorized += 1
            return twilio_error(401, 20003, "Authenticate")
        if self.script:
            return self.script.popleft()
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return twilio_error(400, 21601, "not a form")
        form = {k: v[0] for k, v in parse_qs(request.body.decode(), keep_blank_values=True).items()}
        senders = [k for k in ("From", "MessagingServiceSid") if k in form]
        if len(senders) != 1:
            return twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' is required")
        if not form.get("Body"):
            return twilio_error(400, 21602, "Message body is required.")
        if len(form["Body"]) > 1600:
            return twilio_error(
                400, 21617, "The concatenated message body exceeds the 1600 character limit."
            )
        to = form.get("To", "")
        whatsapp = to.startswith("whatsapp:")
        if not _E164.fullmatch(to.removeprefix("whatsapp:")):
            return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if whatsapp != form.get("From", "").startswith("whatsapp:"):
            return twilio_error(400, 63007, "Twilio could not find a Channel with the From address")
        if to in self.unsubscribed:
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        sid = "SM" + secrets.token_hex(16)
        self.messages.append(form)  # tests compare the whole form: no field goes unseen
        self.sids.append(sid)
        self.arrived.set()
        answer = {"sid": sid, "status": "queued", "to": to, "body": form["Body"]}
        return 201, {"content-type": "application/json"}, orjson.dumps(answer)


@asynccontextmanager
async def twilio_server(server: TwilioServer) -> AsyncIterator[TwilioServer]:
    async with http_server(server.handle) as url:
        server.url = url
        yield server
