"""Parse FFmpeg's `-progress` output into percentages (PURE).

FFmpeg writes blocks of `key=value` lines, each ending with `progress=continue` (or `end`).
`out_time_us` is the position reached in microseconds (`out_time_ms` is microseconds too, despite
its name); it reads `N/A` before the first frame and can be negative at the very start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProgressBlock:
    out_time: float | None  # seconds of output written so far
    speed: float | None  # x realtime
    done: bool  # progress=end


class ProgressParser:
    """Feed it lines; it returns a `ProgressBlock` each time a block is complete."""

    def __init__(self) -> None:
        self._fields: dict[str, str] = {}

    def feed(self, line: str) -> ProgressBlock | None:
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        if key != "progress":
            self._fields[key] = value.strip()
            return None
        block = ProgressBlock(
            out_time=_out_time(self._fields), speed=_speed(self._fields.get("speed")), done=value == "end"
        )
        self._fields = {}
        return block


def _out_time(fields: dict[str, str]) -> float | None:
    for key in ("out_time_us", "out_time_ms"):
        raw = fields.get(key, "")
        try:
            return max(0.0, int(raw) / 1_000_000)
        except ValueError:
            continue
    return _clock_seconds(fields.get("out_time", ""))


def _clock_seconds(raw: str) -> float | None:
    """'00:01:02.500000' -> 62.5"""
    parts = raw.lstrip("-").split(":")
    if len(parts) != 3:
        return None
    try:
        hours, minutes, seconds = int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None
    return 0.0 if raw.startswith("-") else hours * 3600 + minutes * 60 + seconds


def _speed(raw: str | None) -> float | None:
    try:
        return float((raw or "").rstrip("x"))
    except ValueError:
        return None


def percent(out_time: float | None, duration: float | None, *, lo: int = 0, hi: int = 99) -> int:
    """Position within [lo, hi]: 0..99 while running (the caller says 100 only once the file is there)."""
    if out_time is None or not duration or duration <= 0:
        return lo
    fraction = min(1.0, max(0.0, out_time / duration))
    return min(hi, lo + int(fraction * (hi - lo)))


class Monotonic:
    """Wraps a progress callback so it only ever sees rising integers within 0..99."""

    def __init__(self, callback: Callable[[int], None]) -> None:
        self._callback = callback
        self.value = -1

    def __call__(self, value: int) -> None:
        value = min(99, max(0, value))
        if value > self.value:
            self.value = value
            self._callback(value)
