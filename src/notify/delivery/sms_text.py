"""SMS text that fits a bounded number of segments (GSM 03.38 and UCS-2 rules).

An SMS carries 140 bytes: 160 GSM-7 characters, or 70 UCS-2 (UTF-16) code
units once a single character falls outside the GSM alphabet. A longer text
is split into concatenated segments that each lose room to the UDH header:
153 GSM-7 or 67 UCS-2 units. GSM's extension characters (``^{}\\[~]|€`` and
form feed) cost two units and a character outside the Basic Multilingual
Plane (most emoji) two UTF-16 units; carriers never split either across
segments, so neither does the count here.

Every segment is billed, so a notification's text is cut to at most
``MAX_SEGMENTS`` (3: 459 GSM-7 or 201 UCS-2 characters), ending with an
ellipsis. WhatsApp has no segments; its text is cut at Twilio's 1600
characters.
"""

from __future__ import annotations

MAX_SEGMENTS = 3
WHATSAPP_MAX_CHARS = 1600

_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
_LIMITS = {True: (160, 153), False: (70, 67)}  # gsm7 -> (one segment, per segment of many)


def is_gsm7(text: str) -> bool:
    return all(c in _GSM_BASIC or c in _GSM_EXTENSION for c in text)


def _units(char: str, gsm7: bool) -> int:
    if gsm7:
        return 2 if char in _GSM_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def segments(text: str) -> int:
    """How many segments the text is sent as (0 for none)."""
    if not text:
        return 0
    gsm7 = is_gsm7(text)
    single, multi = _LIMITS[gsm7]
    sizes = [_units(c, gsm7) for c in text]
    if sum(sizes) <= single:
        return 1
    count, used = 1, 0
    for size in sizes:
        if used + size > multi:
            count, used = count + 1, 0
        used += size
    return count


def fit_sms(text: str, max_segments: int = MAX_SEGMENTS) -> str:
    """The text, or its longest prefix plus an ellipsis that fits ``max_segments``.

    A text is UCS-2 as a whole when one character is outside GSM-7; when that
    character falls beyond the cut, the GSM-7 prefix before it is packed as GSM-7
    (more than twice as many characters).
    """
    # No text longer than this fits (a character is one unit at least): the rest is
    # never looked at, so a 64 KiB body costs what a short one does.
    most = max(_LIMITS[True][0], _LIMITS[True][1] * max_segments)
    text = text[: most + 1]
    if segments(text) <= max_segments:
        return text
    best = _cut(text, max_segments, whole=False)
    first_ucs2 = next((i for i, c in enumerate(text) if not is_gsm7(c)), len(text))
    if first_ucs2 < len(text):
        gsm_prefix = _cut(text[:first_ucs2], max_segments, whole=True)
        if len(gsm_prefix) > len(best):
            best = gsm_prefix
    return best


def _cut(text: str, max_segments: int, *, whole: bool) -> str:
    """The longest prefix (all of ``text`` only when ``whole``) that fits with its ellipsis."""
    gsm7 = is_gsm7(text)
    budget = _LIMITS[gsm7][1] * max_segments
    cut, used = (len(text) if whole else len(text) - 1), 0
    for i, char in enumerate(text):
        used += _units(char, gsm7)
        if used > budget:
            cut = min(cut, i)
            break
    while cut > 0:
        prefix = text[:cut].rstrip()
        candidate = prefix + ("..." if is_gsm7(prefix) else "…")
        if segments(candidate) <= max_segments:
            return candidate
        cut -= 1
    return ""


def fit_whatsapp(text: str) -> str:
    if len(text) <= WHATSAPP_MAX_CHARS:
        return text
    return text[: WHATSAPP_MAX_CHARS - 1].rstrip() + "…"


def compose(title: str, body: str) -> str:
    """The message text: the title, then the body on its own line."""
    return f"{title}\n{body}" if body else title
