"""The same core on PostgreSQL: the seed flow, credits that cannot be overdrawn, jobs claimed exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from konvrt import accounts, jobs, schema
from konvrt.config import Settings
from konvrt.db import Account, Database, Job
from tests.conftest import LiveServer, SettingsFactory, wait_for_job

pytestmark = pytest.mark.postgres


def test_seed_flow_on_postgres(live_server_factory: Callable[..., LiveServer], pg_url: str, clip: Path) -> None:
    server = live_server_factory(database_url=pg_url)
    assert server.services.db.engine.dialect.name == "postgresql"
    with server.client(server.account()) as client:
        res = client.post("/api/v1/compress", files={"file": clip.open("rb")})
        assert res.status_code == 202, res.text
        done = wait_for_job(client, res.json()["job_id"])
        assert done["status"] == "completed", done
        assert client.get(f"/api/v1/download/{done['job_id']}").content[4:8] == b"ftyp"
        assert client.get("/api/v1/usage").json()["credits"] == {"balance": 499, "total_purchased": 500}


def test_balance_never_goes_negative_under_racing_submits(
    live_server_factory: Callable[..., LiveServer], pg_url: str, clip: Path
) -> None:
    server = live_server_factory(database_url=pg_url, workers=0)
    key = server.account(credits=7)
    data = clip.read_bytes()

    def one(_: int) -> int:
        with server.client(key) as client:
            res = client.post("/api/v1/compress", files={"file": ("c.mp4", data)}, data={"codec": "h265"})
            return res.status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        codes = list(pool.map(one, range(24)))
    assert Counter(codes) == {202: 3, 402: 21}  # 7 credits buy three h265 jobs at 2 credits each
    with server.client(key) as client:
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 1


def _pending_jobs(db: Database, settings: Settings, count: int, email: str = "c@example.com") -> list[str]:
    with db.write() as session:
        account = accounts.create_account(session, settings, email, "team")
        account.balance = 10_000
        ids = []
        for _ in range(count):
            job = jobs.create(
                session,
                job_id=jobs.new_job_id(),
                account_id=account.id,
                price=1,
                params={},
                filename="x.mp4",
                size=1,
                info={},
                webhook_url=None,
            )
            ids.append(job.id)
    return ids


def test_each_job_is_claimed_exactly_once_by_racing_workers(settings_factory: SettingsFactory, pg_url: str) -> None:
    settings = settings_factory(database_url=pg_url, team_concurrency=0)
    db = Database(pg_url)
    schema.upgrade(db.engine)
    ids = _pending_jobs(db, settings, 60)
    claims: list[tuple[str, str]] = []
    lock = threading.Barrier(12)

    def claimer(n: int) -> None:
        lock.wait()
        while True:
            with db.write() as session:
                job = jobs.claim_next(session, f"w{n}", timedelta(seconds=60), 3)
            if job is None:
                return
            claims.append((job.id, f"w{n}"))

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(job_id for job_id, _ in claims) == sorted(ids), "every job once, none twice"
    assert len({worker for _, worker in claims}) > 1, "the work was shared"
    with db.read() as session:
        rows = session.query(Job).all()
        assert {(j.status, j.attempts) for j in rows} == {("processing", 1)}
        assert dict(claims) == {j.id: j.worker_id for j in rows}
        assert session.query(Account).one().balance == 10_000 - 60
    db.dispose()
