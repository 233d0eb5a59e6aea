"""The identity provider's signing keys (a JWKS URL), cached and refreshed within bounds.

Verifying a token must not wait on the network, so lookups read only the
cache; fetching happens in ``refresh`` (awaited once at start) and in
background refreshes that a stale cache or an unknown ``kid`` starts. Every
cost an outsider can cause is bounded: one fetch in flight at a time, at most
one per MIN_REFRESH_INTERVAL however many forged ``kid`` values arrive, each
fetch capped in time (FETCH_TIMEOUT, for the whole exchange) and size
(MAX_BYTES), and at most MAX_KEYS keys kept. A failed refresh keeps the keys
already cached. pyjwt's PyJWKClient would do the fetching with blocking
urllib calls on the event loop, so httpx's async client does it here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from notify.keys import UnusableKey, VerificationKey, key_from_jwk

logger = logging.getLogger("notify.auth")

FETCH_TIMEOUT = 5.0
MAX_BYTES = 128 * 1024
MAX_KEYS = 32
MIN_REFRESH_INTERVAL = 30.0
MAX_AGE = 600.0


class JWKSError(Exception):
    """A fetch or a document that cannot be used; the message is one line without secrets."""


class JWKSCache:
    def __init__(
        self,
        url: str,
        accepted: tuple[str, ...],
        *,
        fetch_timeout: float = FETCH_TIMEOUT,
        max_bytes: int = MAX_BYTES,
        max_keys: int = MAX_KEYS,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._accepted = accepted
        self._fetch_timeout = fetch_timeout
        self._max_bytes = max_bytes
        self._max_keys = max_keys
        self._min_interval = min_refresh_interval
        self._max_age = max_age
        self._clock = clock
        self._keys: tuple[VerificationKey, ...] = ()
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self.fetches = 0

    @property
    def keys(self) -> tuple[VerificationKey, ...]:
        return self._keys

    @property
    def refreshing(self) -> bool:
        return self._inflight is not None

    def knows(self, kid: str) -> bool:
        return any(key.kid == kid for key in self._keys)

    def matching(self, kid: str | None, algorithm: str) -> list[VerificationKey]:
        """Cached keys a token with this header may be verified with (no network)."""
        if (
            self._fetched_at is not None
            and self._clock() - self._fetched_at >= self._max_age
            and self._inflight is None
        ):
            self.refresh_soon()
        return [
            key
            for key in self._keys
            if algorithm in key.algorithms and (kid is None or key.kid == kid)
        ]

    async def refresh(self) -> None:
        """Fetches now and replaces the cache; raises JWKSError (the cache stays as it was).

        The fetch at start is not counted against the rate limit: a rotation
        right after start is picked up by the first token that needs it.
        """
        self.fetches += 1
        keys = await self._fetch()
        self._keys = keys
        self._fetched_at = self._clock()

    def refresh_soon(self) -> asyncio.Task[bool] | None:
        """Starts a background refresh unless one runs or one ran too recently.

        Returns the refresh in flight (new or already running), or None when
        the rate limit says not yet or there is no event loop to run it on.
        """
        if self._inflight is not None:
            return self._inflight
        if (
            self._last_attempt is not None
            and self._clock() - self._last_attempt < self._min_interval
        ):
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None
        self._inflight = loop.create_task(self._background_refresh())
        return self._inflight

    async def refresh_for_unknown_kid(self) -> bool:
        """Waits for a refresh (if the rate limit allows one); True if it brought new keys."""
        task = self.refresh_soon()
        if task is None:
            return False
        return await asyncio.shield(task)

    async def close(self) -> None:
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _background_refresh(self) -> bool:
        self._last_attempt = self._clock()
        try:
            await self.refresh()
        except JWKSError as exc:
            logger.warning(
                "JWKS refresh failed; keeping the cached keys", extra={"reason": str(exc)}
            )
            return False
        finally:
            self._inflight = None
        return True

    async def _fetch(self) -> tuple[VerificationKey, ...]:
        try:
            async with asyncio.timeout(self._fetch_timeout):
                body = await self._download()
        except TimeoutError:
            raise JWKSError(f"no answer within {self._fetch_timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise JWKSError(
                f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            ) from None
        return self._parse(body)

    async def _download(self) -> bytes:
        async with (
            httpx.AsyncClient(timeout=self._fetch_timeout, follow_redirects=False) as client,
            client.stream("GET", self.url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise JWKSError(f"HTTP {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > self._max_bytes:
                raise JWKSError(f"larger than {self._max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self._max_bytes:
                    raise JWKSError(f"larger than {self._max_bytes} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    def _parse(self, body: bytes) -> tuple[VerificationKey, ...]:
        try:
            document: Any = json.loads(body)
        except ValueError:
            raise JWKSError("not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise JWKSError('not a JWKS (no "keys" list)')
        if len(entries) > self._max_keys:
            raise JWKSError(f"{len(entries)} keys, more than {self._max_keys}")
        keys: list[VerificationKey] = []
        skipped: list[str] = []
        for number, entry in enumerate(entries, start=1):
            if not isinstance(entry, dict):
                skipped.append(f"key {number}: not an object")
                continue
            try:
                keys.append(key_from_jwk(entry, self._accepted))
            except UnusableKey as exc:
                skipped.append(f"key {number} ({entry.get('kid', 'no kid')}): {exc}")
        if skipped:
            logger.warning("JWKS keys skipped", extra={"skipped": skipped[: self._max_keys]})
        if not keys:
            raise JWKSError("no usable signing key")
        return tuple(keys)
