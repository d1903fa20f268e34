"""The embedded rate-limit storage: limits' memory storage without a thread started per request."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from limits.storage import MemoryStorage

from konvrt.config import Settings
from konvrt.ratelimit import RateLimiter, SweptMemoryStorage


def _timers_started_by_spaced_hits(storage: MemoryStorage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> int:
    started = []

    class CountingTimer(threading.Timer):
        def start(self) -> None:
            started.append(self)
            super().start()

    monkeypatch.setattr(threading, "Timer", CountingTimer)
    limiter = RateLimiter(Settings(data_dir=tmp_path, ratelimit_pro=60), storage=storage)
    for n in range(10):
        assert limiter.hit_account(n, "pro").allowed
        time.sleep(0.02)  # the pace of a polling client, as far as the 10 ms timer can tell
    return len(started)


def test_spaced_hits_start_no_thread(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _timers_started_by_spaced_hits(MemoryStorage(), monkeypatch, tmp_path) >= 5  # the stock storage does
    assert _timers_started_by_spaced_hits(SweptMemoryStorage(), monkeypatch, tmp_path) == 0


def test_expired_entries_are_swept(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(SweptMemoryStorage, "SWEEP_SECONDS", 0.05)
    storage = SweptMemoryStorage()
    limiter = RateLimiter(Settings(data_dir=tmp_path, ratelimit_pro=2, ratelimit_window_seconds=1), storage=storage)
    assert [limiter.hit_account(7, "pro").allowed for _ in range(3)] == [True, True, False]
    events: dict[str, Any] = storage.events
    assert sum(len(entries) for entries in events.values()) == 2
    deadline = time.monotonic() + 5
    while any(events.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(events.values())
    assert limiter.hit_account(7, "pro").allowed  # the window moved on


def test_embedded_default_uses_the_swept_storage(tmp_path: Path) -> None:
    assert isinstance(RateLimiter(Settings(data_dir=tmp_path)).storage, SweptMemoryStorage)
