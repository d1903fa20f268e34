"""A bounded pool for image conversions: N threads, a short queue, and a clean refusal past that.

libvips releases the GIL while it decodes and encodes, so threads give real parallelism; the
bound keeps a burst of AVIF encodes from queueing without limit (imgproxy's workers + queue).
A slot is held until the conversion really ends, even when the client has gone away meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from konvrt.errors import ServiceUnavailable

T = TypeVar("T")


class Reservation:
    def __init__(self, pool: ImagePool) -> None:
        self._pool = pool
        self.started = False

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self.started:
            raise RuntimeError("a reservation runs one conversion")
        self.started = True
        future = self._pool.executor.submit(fn, *args)
        future.add_done_callback(lambda _: self._pool.release())
        return await asyncio.wrap_future(future)


class ImagePool:
    def __init__(self, threads: int = 0, queue: int = 0) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.capacity = self.threads + (queue or 4 * self.threads)
        self.executor = ThreadPoolExecutor(self.threads, thread_name_prefix="konvrt-image")
        self._slots = threading.BoundedSemaphore(self.capacity)

    @contextmanager
    def reserve(self) -> Iterator[Reservation]:
        """A place in the pool, or ServiceUnavailable at once when every thread and queue place is taken."""
        if not self._slots.acquire(blocking=False):
            raise ServiceUnavailable(
                "The server is converting as many images as it can; try again in a moment.", code="busy"
            )
        reservation = Reservation(self)
        try:
            yield reservation
        finally:
            if not reservation.started:
                self.release()

    def release(self) -> None:
        self._slots.release()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
