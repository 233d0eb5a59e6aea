"""What every external provider's HTTP calls share: the client's settings, and reading answers.

Providers never follow redirects (a redirect could lead past the address
guard, ``notify.delivery.ssrf``, or hand a credential to another host) and
say who they are in ``user-agent``; each chooses its own pool size and
whether the environment's proxy settings apply.
"""

from __future__ import annotations

import email.utils
from typing import Any

import httpx
import orjson

from notify import __version__

USER_AGENT = f"notify/{__version__}"


def client(
    *,
    timeout: float,
    trust_env: bool,
    headers: dict[str, str] | None = None,
    **options: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` with the settings above; ``options`` are httpx's own."""
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=trust_env,
        headers={"user-agent": USER_AGENT, **(headers or {})},
        **options,
    )


def json_body(response: httpx.Response) -> Any:
    """The answer's JSON, or None when it is not JSON (a proxy's HTML error page)."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def retry_after_ms(value: str | None, now_ms: int) -> int:
    """``Retry-After`` as seconds or an HTTP date, in ms from now (0: none or unreadable)."""
    if not value:
        return 0
    value = value.strip()
    if value.isdigit():
        return int(value) * 1000
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0
    return max(0, int(when.timestamp() * 1000) - now_ms)
