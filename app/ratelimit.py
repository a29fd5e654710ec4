"""Per-user and per-organisation rate limits: token buckets kept in the service process.

Every authenticated request takes one token from its user's bucket (keyed by the token's
issuer and subject) and one from its organisation's bucket. A bucket holds at most `burst`
tokens and refills at `per_minute / 60` tokens a second. When either bucket is empty the
request is refused with `429` problem+json and `Retry-After` (whole seconds until a token is
back), and neither bucket is charged: a user held back by their own limit does not use up the
organisation's share, and a refused request does not push the user's wait further out.

The check runs in the principal dependency (`app/deps.py`), right after authentication, so
anonymous endpoints (`/health`, `/ready`, the web client's static files) are never limited and
an unauthenticated caller is refused with `401` before it can touch any bucket.

Known limits, by design of an in-process limiter:

* The buckets live in one process. With `samplan serve --workers N`, or several instances
  behind a load balancer, each process keeps its own buckets, so the effective limit is N times
  the configured one. Exact limits across processes need a shared store (Redis, or a table in
  PostgreSQL with `UPDATE ... RETURNING`); the `RateLimiter` interface (`check(principal)`) is
  the seam where such a store would plug in.
* Restarting the process refills every bucket.
* Requests that fail authentication are not counted here; a per-address limit for those
  belongs in the reverse proxy in front of the service.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from app.auth.principal import Principal
from app.config import Settings
from app.errors import Problem

# Idle buckets are forgotten once the table grows past this many keys (a full bucket carries no
# information: a new one starts full too), so a stream of distinct subjects cannot grow memory.
_SWEEP_ABOVE = 10_000


class TooManyRequests(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(
            detail, headers={"Retry-After": str(retry_after)}, extra={"retry_after": retry_after}
        )


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Buckets of one kind (users, or organisations) with the same rate and size."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float]) -> None:
        self.rate = per_minute / 60.0  # tokens a second
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[object, _Bucket] = {}

    def _refilled(self, key: object, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _SWEEP_ABOVE:
                self._sweep(now)
            bucket = _Bucket(self.burst, now)
            self._buckets[key] = bucket
            return bucket
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket

    def wait_seconds(self, key: object) -> float:
        """0 when a token is available now, else the seconds until one is."""
        bucket = self._refilled(key, self._clock())
        if bucket.tokens >= 1.0:
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def take(self, key: object) -> None:
        self._buckets[key].tokens -= 1.0

    def _sweep(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.updated >= full_after]:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimiter:
    """The limits of one process. `check` never awaits, so on one event loop it is atomic."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = settings.rate_limit_enabled
        self.users = TokenBuckets(settings.rate_limit_user_per_minute, settings.rate_limit_user_burst, clock)
        self.orgs = TokenBuckets(settings.rate_limit_org_per_minute, settings.rate_limit_org_burst, clock)

    def check(self, principal: Principal) -> None:
        """Charge one request to the caller and their organisation, or raise TooManyRequests."""
        if not self.enabled:
            return
        user_key = (principal.issuer, principal.subject)
        org_key: uuid.UUID = principal.organisation_id
        user_wait = self.users.wait_seconds(user_key)
        org_wait = self.orgs.wait_seconds(org_key)
        if user_wait > 0 or org_wait > 0:
            # The longer wait is the one that matters; at least a second, since Retry-After is whole.
            retry_after = max(1, math.ceil(max(user_wait, org_wait)))
            who = "your user" if user_wait >= org_wait else "your organisation"
            raise TooManyRequests(
                f"the request rate limit for {who} is used up; retry after {retry_after} s",
                retry_after,
            )
        self.users.take(user_key)
        self.orgs.take(org_key)
