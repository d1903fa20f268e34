"""The process's long-lived objects, built once from settings and handed to the API, CLI and workers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from konvrt import accounts, schema
from konvrt.config import Settings
from konvrt.db import Account, Database
from konvrt.storage import Storage, open_storage
from konvrt.wakeup import LocalWakeup, Wakeup, open_wakeup
from konvrt.webhooks import events as webhook_events
from konvrt.webhooks.delivery import WebhookSenders
from konvrt.worker import WorkerPool

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Services:
    settings: Settings
    db: Database
    storage: Storage
    pool: WorkerPool | None = field(default=None)
    senders: WebhookSenders | None = field(default=None)
    wakeup: Wakeup = field(default_factory=LocalWakeup)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        webhook_events.install()  # finishing a job queues its webhook event
        schema.prepare(db.engine)
        storage = open_storage(settings.storage_url, settings.data_dir, settings)
        return cls(settings=settings, db=db, storage=storage, wakeup=open_wakeup(settings.queue_url))

    @property
    def reads_are_local(self) -> bool:
        """True when a read touches nothing but this machine: the SQLite file and in-memory counters."""
        return self.db.engine.dialect.name == "sqlite" and self.settings.ratelimit_url in ("", "memory://")

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a request's point lookups (a key, a job). In WAL mode a SQLite read never waits for a writer
        and costs less than the hop to the thread pool and back, so it runs inline; anything that crosses
        the network (PostgreSQL, Redis) goes to the thread pool and never stalls the loop. Scans and writes
        always go to the thread pool."""
        if self.reads_are_local:
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)

    def start_workers(self, size: int, *, sweeper: bool = True) -> WorkerPool:
        self.pool = WorkerPool(self.settings, self.db, self.storage, size)
        self.pool.start(sweeper=sweeper)
        self.pool.announce = self.wakeup.publish
        self.wakeup.subscribe(self.pool.notify)  # a submit on any machine wakes an idle worker here
        if self.senders is None:  # webhook senders: threads of their own, never an encode worker
            self.senders = WebhookSenders(self.settings, self.db)
            self.senders.start()
        return self.pool

    def job_queued(self) -> None:
        if self.pool is not None:
            self.pool.notify()
        self.wakeup.publish()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        if self.senders is not None:
            self.senders.stop()
        self.wakeup.close()
        self.db.dispose()

    def create_demo_account(self) -> str | None:
        """On a fresh database, a pro account and its key, so the seed's curl works at once."""
        with self.db.write() as session:
            if session.scalar(select(Account.id).limit(1)) is not None:
                return None
            account = accounts.create_account(session, self.settings, "demo@konvrt.local", "pro")
            return accounts.create_key(session, account, name="demo").key
