"""JWKS fetching with httpx: cached, refreshed once on an unknown `kid`, at most once a minute."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


class JwksUnavailable(Exception):
    pass


@dataclass
class _Entry:
    keys: dict[str, dict[str, Any]]
    fetched_at: float
    # After a failed refresh: no new try before this time, so an outage at the issuer does not
    # make every request wait for a fetch.
    next_try: float = 0.0


@dataclass
class JwksCache:
    http: httpx.AsyncClient
    ttl_seconds: float = 3600
    min_refresh_seconds: float = 60
    clock: Callable[[], float] = time.monotonic
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def key(self, jwks_url: str, kid: str) -> dict[str, Any] | None:
        entry = self._entries.get(jwks_url)
        if entry and kid in entry.keys and self._age(entry) < self.ttl_seconds:
            return entry.keys[kid]
        lock = self._locks.setdefault(jwks_url, asyncio.Lock())
        async with lock:
            entry = self._entries.get(jwks_url)  # another task may have refreshed meanwhile
            stale = entry is None or self._age(entry) >= self.ttl_seconds
            unknown_kid = entry is not None and kid not in entry.keys
            may_refresh = entry is None or self._age(entry) >= self.min_refresh_seconds
            backing_off = entry is not None and self.clock() < entry.next_try
            if not backing_off and (stale or (unknown_kid and may_refresh)):
                try:
                    entry = await self._fetch(jwks_url)
                except JwksUnavailable:
                    if entry is None:
                        raise
                    # Keep serving the keys we have rather than locking everybody out.
                    entry.next_try = self.clock() + self.min_refresh_seconds
            assert entry is not None
            return entry.keys.get(kid)

    def _age(self, entry: _Entry) -> float:
        return self.clock() - entry.fetched_at

    async def _fetch(self, url: str) -> _Entry:
        try:
            response = await self.http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise JwksUnavailable(f"could not fetch the issuer's keys ({type(exc).__name__})") from None
        raw_keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(raw_keys, list):
            raise JwksUnavailable("the issuer's key set has no 'keys' list")
        keys = {k["kid"]: k for k in raw_keys if isinstance(k, dict) and isinstance(k.get("kid"), str)}
        entry = _Entry(keys=keys, fetched_at=self.clock())
        self._entries[url] = entry
        return entry
