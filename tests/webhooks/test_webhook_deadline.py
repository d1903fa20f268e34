"""A receiver that trickles its answer cannot hold a sender past the webhook timeout."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from konvrt.webhooks.deadline import DeadlineTransport, deadline
from konvrt.webhooks.models import WebhookAttempt
from tests.webhooks.conftest import WorldFactory

STATUS_LINE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def trickler() -> Iterator[str]:
    """Reads the request, then sends its answer one byte every 25 ms: each read is quick, the whole is slow."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                try:
                    for byte in STATUS_LINE:
                        if stop.is_set():
                            return
                        conn.sendall(bytes([byte]))
                        time.sleep(0.025)
                except OSError:
                    pass  # the sender hung up: what we want

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    thread.join(5)
    server.close()


def test_httpx_timeouts_alone_would_let_it_through(trickler: str) -> None:
    """Why the deadline exists: every read is under the timeout, so httpx waits the whole ~1 s."""
    with httpx.Client(transport=DeadlineTransport(), timeout=0.5) as client:
        assert client.post(trickler, content=b"{}").status_code == 200


def test_deadline_cuts_the_whole_request(trickler: str) -> None:
    started = time.monotonic()
    with httpx.Client(transport=DeadlineTransport(), timeout=0.5) as client, deadline(0.5):
        with pytest.raises(httpx.TimeoutException):
            client.post(trickler, content=b"{}")
    assert time.monotonic() - started < 1.0


def test_a_trickling_receiver_is_cut_off_at_the_webhook_timeout(world_factory: WorldFactory, trickler: str) -> None:
    world = world_factory(webhook_timeout_seconds=0.5, webhook_retry_schedule=[])
    world.start_senders()
    started = time.monotonic()
    row = world.wait_settled(world.finish(trickler))
    assert time.monotonic() - started < 1.5
    assert row.last_error == "The receiver did not answer within 0.5 s. Gave up after 1 failed attempt."
    with world.db.read() as session:
        (attempt,) = session.scalars(select(WebhookAttempt)).all()
    assert 400 <= attempt.duration_ms < 1000
