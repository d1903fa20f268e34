"""Rate limits over the `limits` library: a moving window per account, and one per client address for
requests that fail authentication. Counters live in memory (one process) or in Redis (shared by every
API machine), chosen by `KONVRT_RATELIMIT_URL`; the code path is the same.

Nothing here knows HTTP: `api/rate_limit.py` turns a `Verdict` into headers and a 429.
"""

from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import cast

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, MovingWindowSupport, Storage, storage_from_string

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

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        """X-RateLimit-Limit, -Remaining and -Reset (Unix time), as ASGI header pairs."""
        return [
            (b"x-ratelimit-limit", b"%d" % self.limit),
            (b"x-ratelimit-remaining", b"%d" % self.remaining),
            (b"x-ratelimit-reset", b"%d" % math.ceil(self.reset_at)),
        ]


class RateLimiter:
    """Moving windows (not fixed buckets): never more than `limit` requests in any `window` seconds."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.storage = storage or _open_storage(settings.ratelimit_url)
        # limits' moving-window strategy, less its wrapper: that derives the key twice per hit (for the hit
        # and again for the window's stats), and every API request makes a hit.
        self._windows = cast(MovingWindowSupport, self.storage)  # _open_storage checked it
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
        remaining, reset_at = self._window(self._address, self._address.key_for("address", address))
        return Verdict(remaining > 0, self._address.amount, remaining, reset_at)

    def hit_address(self, address: str) -> Verdict:
        """Count one failed authentication against the client address."""
        return self._hit(self._address, "address", address)

    def _hit(self, item: RateLimitItem, *identifiers: str) -> Verdict:
        key = item.key_for(*identifiers)
        allowed = self._windows.acquire_entry(key, item.amount, item.get_expiry())
        remaining, reset_at = self._window(item, key)
        return Verdict(allowed, item.amount, remaining, reset_at)

    def _window(self, item: RateLimitItem, key: str) -> tuple[int, float]:
        """Requests left in the window, and when its oldest one leaves it."""
        started, used = self._windows.get_moving_window(key, item.amount, item.get_expiry())
        return item.amount - used, started + item.get_expiry()

    def reset(self) -> None:
        self.storage.reset()


def _open_storage(url: str) -> Storage:
    if url in ("", "memory://"):
        return SweptMemoryStorage()
    storage = storage_from_string(url)
    if not isinstance(storage, Storage):
        raise ValueError(f"KONVRT_RATELIMIT_URL {url!r} names an asyncio storage; use redis:// or memory://")
    if not isinstance(storage, MovingWindowSupport):
        raise ValueError(f"KONVRT_RATELIMIT_URL {url!r} cannot keep moving windows; use redis:// or memory://")
    return storage


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, its expired entries swept by one long-lived thread.

    The stock storage starts a new 10 ms timer thread on a hit whenever the last one has finished,
    which is on nearly every request of an API polled every few seconds; starting a thread waits for
    it to take the GIL, and that cost each request about 0.7 ms here (median), more than the rest of
    the rate limit and the key check together."""

    SWEEP_SECONDS = 1.0

    def __init__(self) -> None:
        super().__init__()
        # The thread holds the storage weakly, so a storage nobody uses any more takes its sweeper along.
        threading.Thread(target=_sweep, args=(weakref.ref(self),), daemon=True, name="konvrt-ratelimit").start()

    def _MemoryStorage__schedule_expiry(self) -> None:  # the stock per-hit timer, replaced by _sweep
        pass


_EXPIRE_EVENTS = "_MemoryStorage__expire_events"  # limits' own expiry pass (name-mangled private method)


def _sweep(ref: weakref.ref[SweptMemoryStorage]) -> None:
    while True:
        time.sleep(SweptMemoryStorage.SWEEP_SECONDS)
        storage = ref()
        if storage is None:
            return
        getattr(storage, _EXPIRE_EVENTS)()
        del storage
