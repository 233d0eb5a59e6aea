"""Phone numbers in E.164 form (``+`` country code and number, at most 15 digits).

SMS and WhatsApp providers take nothing else: a number with spaces, dashes or
a missing country code is refused rather than guessed at, because a guess can
reach someone else's phone.
"""

from __future__ import annotations

import re

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
WHATSAPP_PREFIX = "whatsapp:"


def e164(text: str) -> str | None:
    """The number if ``text`` is exactly one E.164 number, else None."""
    return text if _E164.fullmatch(text) else None


def whatsapp_number(text: str) -> str | None:
    """An E.164 number, bare or as Twilio's ``whatsapp:+E164``; None otherwise."""
    return e164(text.removeprefix(WHATSAPP_PREFIX))
