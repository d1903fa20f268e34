"""The issue's cluster: 2 API and 3 worker processes on PostgreSQL, Redis and S3 (moto); 30 jobs; one worker
killed with -9 and another stopped with SIGTERM mid-job; every job completed once, credits exact, and no
file left in the bucket once the downloads expire."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import boto3
import httpx
import pytest
from sqlalchemy import select

from konvrt.db import Database, Job, LedgerEntry
from tests.conftest import free_port, make_clip
from tests.scaled.conftest import MotoServer
from tests.scaled.procs import env_for, konvrt, run_cli, stop, wait_http

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.s3]


def _owner_pid(job: Job) -> int:
    return int((job.worker_id or "").split(":")[1])  # worker ids are host:pid:thread


def _busy_worker(db: Database, pids: set[int], deadline: float) -> int:
    """The pid of a worker in `pids` that is mid-encode (progress under way) right now."""
    while time.monotonic() < deadline:
        with db.read() as session:
            for job in session.scalars(select(Job).where(Job.status == "processing", Job.progress > 0)):
                if _owner_pid(job) in pids:
                    return _owner_pid(job)
        time.sleep(0.02)
    raise AssertionError("no worker was caught mid-job")


def test_cluster_loses_nothing(
    pg_url: str, redis_url: str, queue_prefix: str, moto_server: MotoServer, s3_bucket: str, tmp_path: Path
) -> None:
    common = {
        "database_url": pg_url,
        "queue_url": f"{redis_url}?channel={queue_prefix}",
        **moto_server.settings(s3_bucket),
        "lease_seconds": "3",
        "sweep_interval_seconds": "2",
        "download_ttl_seconds": "25",
        "ffmpeg_threads": "1",
        "workers": "1",
    }
    env = env_for(tmp_path / "admin", **common)
    keys = []
    for n in range(3):  # three accounts, so no one account meets the rate limit or its concurrency cap alone
        run_cli("accounts", "create", f"c{n}@example.com", "--plan", "pro", env=env)
        keys.append(run_cli("keys", "create", f"c{n}@example.com", env=env))
    procs: list[subprocess.Popen[bytes]] = []
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        procs.append(konvrt("serve", "--port", str(port), "--no-workers", env=env_for(tmp_path / f"api{i}", **common)))
    workers = {
        (p := konvrt("worker", env=env_for(tmp_path / f"w{i}", **common), log=tmp_path / f"w{i}.log")).pid: p
        for i in range(3)
    }
    db = Database(pg_url)
    tiny = make_clip(tmp_path / "tiny.mp4", seconds=1, size="160x120")
    longer = make_clip(tmp_path / "longer.mp4", seconds=8, size="480x270")  # long enough to be caught mid-encode
    try:
        for i, port in enumerate(ports):
            wait_http(f"http://127.0.0.1:{port}/healthz", procs[i])
        submitted: dict[str, int] = {}
        owner: dict[str, str] = {}
        for n in range(30):
            clip, codec = (longer, "h265") if n % 5 == 0 else (tiny, "h264")
            url = f"http://127.0.0.1:{ports[n % 2]}/api/v1/compress"
            res = httpx.post(
                url,
                headers={"Authorization": f"Bearer {keys[n % 3]}"},
                files={"file": clip.open("rb")},
                data={"codec": codec},
                timeout=60,
            )
            assert res.status_code == 202, res.text
            submitted[res.json()["job_id"]] = res.json()["credits_charged"]
            owner[res.json()["job_id"]] = keys[n % 3]

        deadline = time.monotonic() + 60
        killed = _busy_worker(db, set(workers), deadline)
        workers[killed].send_signal(signal.SIGKILL)
        termed = _busy_worker(db, set(workers) - {killed}, deadline)
        workers[termed].send_signal(signal.SIGTERM)
        assert workers[termed].wait(30) == 0, "SIGTERM hands the job back and exits cleanly"
        workers[killed].wait(10)

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with db.read() as session:
                states = Counter(session.scalars(select(Job.status)).all())
            if states["completed"] == 30:
                break
            time.sleep(0.25)
        assert states == {"completed": 30}, states

        with db.read() as session:
            rows = session.scalars(select(Job)).all()
            ledger = session.scalars(select(LedgerEntry).where(LedgerEntry.kind.in_(("charge", "refund")))).all()
        assert {j.id for j in rows} == set(submitted)
        assert max(j.attempts for j in rows) >= 2, "the killed worker's job ran again elsewhere"
        charges = Counter(e.job_id for e in ledger if e.kind == "charge")
        assert charges == Counter(set(submitted)) and not [e for e in ledger if e.kind == "refund"]
        spent = sum(submitted.values())
        balances = [
            httpx.get(
                f"http://127.0.0.1:{ports[n % 2]}/api/v1/usage", headers={"Authorization": f"Bearer {keys[n]}"}
            ).json()["credits"]["balance"]
            for n in range(3)
        ]
        assert sum(balances) == 3 * 500 - spent, "credits exact: each job charged once, none refunded"

        for port in ports:  # any API machine streams any output from the bucket
            job_id = max(rows, key=lambda j: j.completed_at or j.created_at).id  # the freshest: not expired yet
            got = httpx.get(
                f"http://127.0.0.1:{port}/api/v1/download/{job_id}",
                headers={"Authorization": f"Bearer {owner[job_id]}"},
            )
            assert got.status_code == 200 and got.content[4:8] == b"ftyp"
        s3 = boto3.client("s3", **moto_server.client_kwargs())
        keys_in_bucket = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
        outputs = {f"konvrt/jobs/{j}/output.mp4" for j in submitted}
        # Only outputs remain (the inputs were deleted as each job ended); the sweep may have taken early ones.
        assert keys_in_bucket and set(keys_in_bucket) <= outputs, keys_in_bucket

        deadline = time.monotonic() + 60  # the downloads expire; one sweeper deletes the outputs
        while time.monotonic() < deadline and s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0):
            time.sleep(0.5)
        assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0, "no file left behind after expiry"
    finally:
        for proc in [*procs, *workers.values()]:
            stop(proc)
        db.dispose()
