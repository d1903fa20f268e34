"""Wake-ups across machines: a submit on one API machine wakes idle workers everywhere at once.

The job row stays the queue (workers still poll it once a second, so nothing is lost when Redis is
down or a message is missed); Redis pub/sub only shortens the wait. With no `KONVRT_QUEUE_URL` the
process wakes its own workers and no one else's.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

log = logging.getLogger("konvrt.wakeup")

DEFAULT_CHANNEL = "konvrt:jobs"


class Wakeup(Protocol):
    def publish(self) -> None: ...

    def subscribe(self, callback: Callable[[], None]) -> None: ...

    def healthy(self) -> bool: ...

    def close(self) -> None: ...


class LocalWakeup:
    """One process: the API wakes its own workers directly, nothing travels."""

    def publish(self) -> None:
        pass

    def subscribe(self, callback: Callable[[], None]) -> None:
        pass

    def healthy(self) -> bool:
        return True

    def close(self) -> None:
        pass


def split_channel(url: str) -> tuple[str, str]:
    """`redis://h:6379/0?channel=x` -> ("redis://h:6379/0", "x"); the channel defaults to konvrt:jobs."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    channel = query.pop("channel", DEFAULT_CHANNEL)
    return urlunsplit(parts._replace(query=urlencode(query))), channel


class RedisWakeup:
    """Redis pub/sub on one channel; a subscriber thread reconnects after errors."""

    def __init__(self, url: str) -> None:
        import redis

        address, self.channel = split_channel(url)
        self.client: Any = redis.Redis.from_url(address, socket_timeout=5, socket_connect_timeout=5)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self) -> None:
        try:
            self.client.publish(self.channel, b"job")
        except Exception:  # workers still poll the database: a lost wake-up only costs a second
            log.warning("could not publish a wake-up to Redis", exc_info=True)

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=self._listen, args=(callback,), name="konvrt-wakeup", daemon=True)
        self._thread.start()

    def _listen(self, callback: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self.client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():
                    if pubsub.get_message(timeout=0.5) is not None:
                        callback()
                pubsub.close()
            except Exception:
                log.warning("Redis wake-up subscription lost; retrying", exc_info=True)
                self._stop.wait(1)

    def healthy(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.client.close()


def open_wakeup(url: str) -> Wakeup:
    if not url:
        return LocalWakeup()
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisWakeup(url)
    raise ValueError(f"Unsupported KONVRT_QUEUE_URL {url!r}: use redis://host:port/db or leave it empty.")
