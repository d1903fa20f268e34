"""Rate limits over the `limits` library: a moving window per account, and one per client address for
requests that fail authentication. Counters live in memory (one process) or in Redis (shared by every
API machine), chosen by `KONVRT_RATELIMIT_URL`; the code path is the same.

Nothing here knows HTTP: `api/rate_limit.py` turns a `Verdict` into headers and a 429.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from konvrt.config import Settings


@dataclass(frozen=True)
class Verdict:
    """One request's standing in its window."""

    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # Unix time at which the oldest request in the window leaves it

    @property
    def retry_after(self) -> int:
        """Whole seconds until a refused request may succeed (at least 1)."""
        return max(1, math.ceil(self.reset_at - time.time()))

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }


class RateLimiter:
    """Moving windows (not fixed buckets): never more than `limit` requests in any `window` seconds."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.storage = storage or storage_from_string(settings.ratelimit_url or "memory://")
        self._limiter = MovingWindowRateLimiter(self.storage)
        window = settings.ratelimit_window_seconds
        self._plans = {
            "pro": RateLimitItemPerSecond(settings.ratelimit_pro, window, namespace="konvrt"),
            "team": RateLimitItemPerSecond(settings.ratelimit_team, window, namespace="konvrt"),
        }
        self._address = RateLimitItemPerSecond(settings.ratelimit_per_address, window, namespace="konvrt")

    def hit_account(self, account_id: int, plan: str) -> Verdict:
        """Count one request against the account (all its keys share it)."""
        item = self._plans.get(plan, self._plans["pro"])
        return self._hit(item, "account", str(account_id))

    def address_window(self, address: str) -> Verdict:
        """Where `address` stands in its failed-authentication window, without counting a request.

        Checked before a key is looked up, so a flood of guesses gets 429s, not answers."""
        stats = self._limiter.get_window_stats(self._address, "address", address)
        return Verdict(stats.remaining > 0, self._address.amount, stats.remaining, stats.reset_time)

    def hit_address(self, address: str) -> Verdict:
        """Count one failed authentication against the client address."""
        return self._hit(self._address, "address", address)

    def _hit(self, item: RateLimitItem, *identifiers: str) -> Verdict:
        allowed = self._limiter.hit(item, *identifiers)
        stats = self._limiter.get_window_stats(item, *identifiers)
        return Verdict(allowed, item.amount, stats.remaining, stats.reset_time)

    def reset(self) -> None:
        self.storage.reset()
