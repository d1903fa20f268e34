"""Run one FFmpeg argv safely: own process group, lower priority, progress from stdout, bounded stderr,
wall and stall timeouts, cancellation, SIGTERM -> grace -> SIGKILL, and always reaped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from konvrt.media.progress import ProgressParser

STDERR_KEEP_BYTES = 32 * 1024  # the tail failures.py reads; bounded however chatty the encoder is
GRACE_SECONDS = 2.0  # FFmpeg flushes its encoders on SIGTERM; we discard that output anyway
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class RunResult:
    returncode: int
    stderr_tail: str
    out_time: float | None = None  # the furthest position FFmpeg reported, in seconds
    timed_out: bool = False
    stalled: bool = False
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not (self.timed_out or self.stalled or self.cancelled)


class _Tail:
    """A ring of the last STDERR_KEEP_BYTES of stderr lines."""

    def __init__(self, limit: int = STDERR_KEEP_BYTES) -> None:
        self._lines: deque[str] = deque()
        self._size = 0
        self._limit = limit

    def add(self, line: str) -> None:
        line = line[-self._limit :]
        self._lines.append(line)
        self._size += len(line)
        while self._size > self._limit and len(self._lines) > 1:
            self._size -= len(self._lines.popleft())

    def text(self) -> str:
        return "".join(self._lines)


class _Watch:
    """What the stdout reader saw: the furthest out_time and when it last moved."""

    def __init__(self) -> None:
        self.out_time: float | None = None
        self.moved_at = time.monotonic()
        self.lock = threading.Lock()

    def saw(self, out_time: float | None) -> None:
        with self.lock:
            if out_time is not None and (self.out_time is None or out_time > self.out_time):
                self.out_time = out_time
                self.moved_at = time.monotonic()


def niced(argv: list[str], nice: int) -> list[str]:
    """Prefix `nice -n N` so FFmpeg and every thread it starts run below the API's priority."""
    nice_exe = shutil.which("nice")
    if nice <= 0 or nice_exe is None:
        return argv
    return [nice_exe, "-n", str(nice), *argv]


def run(
    argv: list[str],
    *,
    nice: int,
    timeout: float,
    stall_timeout: float,
    on_out_time: Callable[[float], None] = lambda _t: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> RunResult:
    """Run `argv` to the end or until a limit; `on_out_time` gets rising positions (s) on this thread."""
    proc = subprocess.Popen(
        niced(argv, nice),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,  # its own group: killing it takes FFmpeg's children (and nice) down with it
        text=True,
        errors="replace",
    )
    watch, tail = _Watch(), _Tail()
    readers = [
        threading.Thread(target=_read_progress, args=(proc.stdout, watch), daemon=True),
        threading.Thread(target=_read_stderr, args=(proc.stderr, tail), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        outcome = _supervise(proc, watch, timeout, stall_timeout, on_out_time, should_stop)
    finally:
        _stop(proc)
        for reader in readers:
            reader.join(timeout=GRACE_SECONDS)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return RunResult(returncode=proc.returncode, stderr_tail=tail.text(), out_time=watch.out_time, **outcome)


def _supervise(
    proc: subprocess.Popen[str],
    watch: _Watch,
    timeout: float,
    stall_timeout: float,
    on_out_time: Callable[[float], None],
    should_stop: Callable[[], bool],
) -> dict[str, bool]:
    started = time.monotonic()
    reported: float | None = None
    while proc.poll() is None:
        time.sleep(POLL_SECONDS)
        with watch.lock:
            out_time, moved_at = watch.out_time, watch.moved_at
        if out_time is not None and out_time != reported:
            reported = out_time
            on_out_time(out_time)
        now = time.monotonic()
        if should_stop():
            return {"cancelled": True}
        if now - started > timeout:
            return {"timed_out": True}
        if now - moved_at > stall_timeout:
            return {"stalled": True}
    return {}


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the whole group, a grace period, then SIGKILL; always reap."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
    proc.wait()


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read_progress(stream: IO[str] | None, watch: _Watch) -> None:
    if stream is None:
        return
    parser = ProgressParser()
    for line in stream:
        block = parser.feed(line)
        if block is not None:
            watch.saw(block.out_time)


def _read_stderr(stream: IO[str] | None, tail: _Tail) -> None:
    if stream is None:
        return
    for line in stream:
        tail.add(line)
