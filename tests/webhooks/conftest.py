"""A real HTTP receiver on loopback, a real SQLite database, and jobs that finish through konvrt.jobs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from konvrt import accounts, jobs, schema
from konvrt.config import Settings
from konvrt.db import Database
from konvrt.webhooks import events
from konvrt.webhooks.delivery import WebhookSenders
from konvrt.webhooks.models import DeliveryState, WebhookDelivery
from konvrt.webhooks.secret_store import current_secret


@dataclass
class Reply:
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived


class Receiver:
    """Answers POSTs with the scripted replies in order (then 200), and records every request."""

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.requests.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                    reply = receiver.script.pop(0) if receiver.script else Reply()
                time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@dataclass
class World:
    settings: Settings
    db: Database
    account_id: int
    senders: list[WebhookSenders] = field(default_factory=list)

    def secret(self) -> str:
        with self.db.write() as session:
            return current_secret(session, self.account_id)

    def start_senders(self, **kwargs: Any) -> WebhookSenders:
        senders = WebhookSenders(self.settings, self.db, **kwargs)
        senders.start()
        self.senders.append(senders)
        return senders

    def submit(self, url: str | None) -> str:
        job_id = jobs.new_job_id()
        with self.db.write() as session:
            jobs.create(
                session,
                job_id=job_id,
                account_id=self.account_id,
                price=1,
                params={"codec": "h264"},
                filename="clip.mp4",
                size=1000,
                info={},
                webhook_url=url,
            )
        return job_id

    def finish(self, url: str | None, *, ok: bool = True) -> str:
        """A job taken by a worker and finished through konvrt.jobs, as the worker pool does."""
        job_id = self.submit(url)
        with self.db.write() as session:
            job = jobs.claim_next(session, "test-worker", timedelta(seconds=60), 3)
            assert job is not None and job.id == job_id
        with self.db.write() as session:
            if ok:
                jobs.complete(session, job_id, "test-worker", output_size=300, note=None, ttl=timedelta(hours=24))
            else:
                jobs.fail_owned(session, job_id, "test-worker", "The input has no video stream.")
        return job_id

    def delivery(self, job_id: str) -> WebhookDelivery:
        with self.db.read() as session:
            row = session.query(WebhookDelivery).filter_by(job_id=job_id).one()
            session.expunge(row)
            return row

    def wait_settled(self, job_id: str, timeout: float = 10) -> WebhookDelivery:
        """Wait until the job's event is delivered, failed or stopped."""
        return self.wait(job_id, lambda row: row.state != DeliveryState.PENDING, timeout)

    def wait(self, job_id: str, done: Callable[[WebhookDelivery], bool], timeout: float = 10) -> WebhookDelivery:
        deadline = time.monotonic() + timeout
        while True:
            row = self.delivery(job_id)
            if done(row):
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"webhook for {job_id} did not settle: {row.state}, {row.last_error}")
            time.sleep(0.02)


WorldFactory = Callable[..., World]


@pytest.fixture
def world_factory(settings_factory: Callable[..., Settings]) -> Iterator[WorldFactory]:
    worlds: list[World] = []
    events.install()

    def make(**overrides: Any) -> World:
        values: dict[str, Any] = {
            "webhook_retry_schedule": [0.05, 0.1, 0.1],
            "webhook_retry_jitter": 0,
            "webhook_timeout_seconds": 2,
            "webhook_poll_seconds": 0.05,
            "webhook_senders": 2,
        }
        values.update(overrides)
        settings = settings_factory(**values)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        schema.upgrade(db.engine)
        with db.write() as session:
            email = f"hooks{time.monotonic_ns()}@example.com"
            account = accounts.create_account(session, settings, email, "pro")
            account_id = account.id
        world = World(settings, db, account_id)
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        for senders in world.senders:
            senders.stop()
        world.db.dispose()


@pytest.fixture
def world(world_factory: WorldFactory) -> World:
    return world_factory()
