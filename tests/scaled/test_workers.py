"""Workers across machines: fairness caps, one sweep per cluster, Redis wake-ups, SIGTERM and kill -9."""

from __future__ import annotations

import signal
import statistics
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from konvrt import accounts, cluster, jobs, schema
from konvrt.config import Settings
from konvrt.db import Database, Job
from konvrt.services import Services
from konvrt.wakeup import RedisWakeup, split_channel
from tests.conftest import LiveServer, SettingsFactory, free_port, make_clip, wait_for_job
from tests.scaled.procs import env_for, konvrt, run_cli, stop, wait_http

LEASE = timedelta(seconds=60)


def _queue(db: Database, settings: Settings, email: str, count: int, plan: str = "pro") -> list[str]:
    with db.write() as session:
        account = accounts.create_account(session, settings, email, plan)
        account.balance = 10_000
        return [
            jobs.create(
                session,
                job_id=jobs.new_job_id(),
                account_id=account.id,
                price=1,
                params={},
                filename="x.mp4",
                size=1,
                info={},
                webhook_url=None,
            ).id
            for _ in range(count)
        ]


def _claim(db: Database, worker: str, caps: dict[str, int]) -> Job | None:
    with db.write() as session:
        return jobs.claim_next(session, worker, LEASE, 3, caps)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'k.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    db = Database(url)
    schema.upgrade(db.engine)
    request.addfinalizer(db.dispose)
    return db


def test_a_backlog_does_not_starve_another_account(database: Database, settings_factory: SettingsFactory) -> None:
    settings = settings_factory()
    busy = _queue(database, settings, "busy@example.com", 20)
    (lone,) = _queue(database, settings, "lone@example.com", 1)
    caps = {"pro": 2, "team": 8}
    taken = [_claim(database, f"w{n}", caps) for n in range(4)]
    assert [j.id if j else None for j in taken] == [busy[0], busy[1], lone, None], "the cap lets the lone job in"
    with database.write() as session:  # one of busy's jobs ends: the next in its line may go
        jobs.fail_owned(session, busy[0], "w0", "done")
    assert (job := _claim(database, "w4", caps)) is not None and job.id == busy[2]
    assert _claim(database, "w5", {"pro": 0, "team": 0}) is not None, "0 means no cap"


@pytest.mark.postgres
def test_racing_workers_never_overshoot_the_cap(pg_url: str, settings_factory: SettingsFactory) -> None:
    db = Database(pg_url)
    schema.upgrade(db.engine)
    _queue(db, settings_factory(), "a@example.com", 30)
    barrier = threading.Barrier(10)
    won: list[str] = []

    def worker(n: int) -> None:
        barrier.wait()
        for _ in range(3):
            if (job := _claim(db, f"w{n}", {"pro": 3})) is not None:
                won.append(job.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 3
    db.dispose()


def test_the_sweep_runs_once_across_machines(database: Database) -> None:
    barrier = threading.Barrier(8)
    turns: list[bool] = []

    def machine(n: int) -> None:
        barrier.wait()
        turns.append(cluster.take_turn(database, "sweep", 0.5, f"m{n}"))

    threads = [threading.Thread(target=machine, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(turns) == [False] * 7 + [True]
    assert not cluster.take_turn(database, "sweep", 0.5, "late")
    time.sleep(0.6)
    assert cluster.take_turn(database, "sweep", 0.5, "next") and not cluster.take_turn(database, "sweep", 0.5, "x")


def test_channel_is_read_from_the_url() -> None:
    assert split_channel("redis://h:6379/0?channel=x") == ("redis://h:6379/0", "x")
    assert split_channel("redis://h:6379/0") == ("redis://h:6379/0", "konvrt:jobs")


@pytest.mark.redis
def test_a_submit_wakes_a_worker_on_another_machine(
    live_server_factory: Callable[..., LiveServer],
    settings_factory: SettingsFactory,
    pg_url: str,
    redis_url: str,
    queue_prefix: str,
    tmp_path: Path,
) -> None:
    queue = f"{redis_url}?channel={queue_prefix}"
    shared = {"database_url": pg_url, "queue_url": queue, "storage_url": f"file://{tmp_path / 'files'}"}
    api = live_server_factory(**shared, workers=0)
    worker = Services.build(settings_factory(**shared, data_dir=tmp_path / "w"))
    worker.start_workers(1, sweeper=False)
    clip = make_clip(tmp_path / "c.mp4", seconds=0.5, size="160x120", audio=False)
    waits = []
    try:
        with api.client(api.account()) as client:
            time.sleep(1.5)  # the worker has gone idle: only a wake-up (or its 1 s poll) brings it back
            for _ in range(4):
                job_id = client.post("/api/v1/compress", files={"file": clip.open("rb")}).json()["job_id"]
                sent = time.monotonic()
                while client.get(f"/api/v1/status/{job_id}").json()["status"] == "pending":
                    time.sleep(0.01)
                waits.append(time.monotonic() - sent)
                assert wait_for_job(client, job_id)["status"] == "completed"
                time.sleep(1.1)
    finally:
        worker.close()
    assert statistics.median(waits) < 0.4, waits  # polling alone would average 0.5 s


@pytest.mark.redis
def test_redis_wakeup_reaches_a_subscriber(redis_url: str, queue_prefix: str) -> None:
    got = threading.Event()
    listener, sender = (
        RedisWakeup(f"{redis_url}?channel={queue_prefix}"),
        RedisWakeup(f"{redis_url}?channel={queue_prefix}"),
    )
    listener.subscribe(got.set)
    try:
        deadline = time.monotonic() + 10
        while not got.is_set() and time.monotonic() < deadline:
            sender.publish()  # the first may land before the subscription is live
            got.wait(0.2)
        assert got.is_set() and listener.healthy()
    finally:
        listener.close()
        sender.close()


def _worker_env(tmp_path: Path, name: str, pg_url: str, **extra: str) -> dict[str, str]:
    return env_for(tmp_path / name, database_url=pg_url, workers="1", **extra)


def _processing(db: Database, job_id: str, timeout: float = 60, not_by: str | None = None) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.read() as session:
            job = session.get(Job, job_id)
            if job and job.status == "processing" and job.progress > 0 and job.worker_id not in (None, not_by):
                return job
        time.sleep(0.1)
    raise AssertionError("the job never got going")


@pytest.mark.postgres
def test_sigterm_hands_the_job_back_and_kill_9_loses_nothing(pg_url: str, tmp_path: Path) -> None:
    """A real `konvrt worker` stopped with SIGTERM releases its job at once; one killed with -9 is
    taken over by another worker when its lease runs out; the job completes once, charged once."""
    shared = tmp_path / "files"
    common = {"storage_url": f"file://{shared}", "lease_seconds": "3", "ffmpeg_threads": "1"}
    api_env = env_for(tmp_path / "api", database_url=pg_url, workers="0", **common)
    run_cli("accounts", "create", "t@example.com", "--plan", "pro", env=api_env)
    key = run_cli("keys", "create", "t@example.com", env=api_env)
    port = free_port()
    api = konvrt("serve", "--port", str(port), env=api_env, log=tmp_path / "api.log")
    db = Database(pg_url)
    clip = make_clip(tmp_path / "long.mp4", seconds=20, size="640x360")
    try:
        wait_http(f"http://127.0.0.1:{port}/api/v1/usage", api)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as c:
            job_id = c.post("/api/v1/compress", files={"file": clip.open("rb")}, data={"codec": "h265"}).json()[
                "job_id"
            ]
            first = konvrt("worker", env=_worker_env(tmp_path, "w1", pg_url, **common), log=tmp_path / "w1.log")
            owner = _processing(db, job_id).worker_id
            first.send_signal(signal.SIGTERM)
            assert first.wait(20) == 0, "a graceful stop is quick"
            with db.read() as session:
                job = session.get(Job, job_id)
                assert job is not None and (job.status, job.attempts, job.worker_id) == ("pending", 0, None), owner

            second = konvrt("worker", env=_worker_env(tmp_path, "w2", pg_url, **common), log=tmp_path / "w2.log")
            killed = _processing(db, job_id).worker_id
            second.send_signal(signal.SIGKILL)
            second.wait(10)
            killed_at = time.monotonic()
            third = konvrt("worker", env=_worker_env(tmp_path, "w3", pg_url, **common), log=tmp_path / "w3.log")
            try:
                taken = _processing(db, job_id, timeout=60, not_by=killed)
                assert taken.attempts == 2 and time.monotonic() - killed_at < 30
                done = wait_for_job(c, job_id, timeout=180)
                assert done["status"] == "completed", done
            finally:
                assert stop(third) == 0
            assert c.get("/api/v1/usage").json()["credits"]["balance"] == 500 - 2, "charged once, h265 = 2"
        with db.read() as session:
            assert session.scalar(select(Job.attempts).where(Job.id == job_id)) == 2
    finally:
        stop(api)
        db.dispose()
