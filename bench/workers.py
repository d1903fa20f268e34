"""Scale-out on this machine: 40 short jobs through 1, 2 and 3 `konvrt worker` processes on PostgreSQL,
and how long a job waits after its worker is killed with -9 before it runs elsewhere (default lease).

    python -m bench.workers [--jobs 40] [--pg postgresql+psycopg://postgres@127.0.0.1:5432]

Each run gets a fresh database and a shared file store; one `konvrt serve --no-workers` takes the
uploads. Jobs are timed from the first submit to the last completion, read from the database.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

from bench._server import _free_port
from konvrt import schema
from konvrt.config import Settings
from konvrt.db import Database, Job


def _clip(path: Path, seconds: int, size: str) -> Path:
    subprocess.run(
        [Settings().ffmpeg_exe, "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(path)],
        check=True,
    )  # fmt: skip
    return path


@contextmanager
def _database(server: str) -> Iterator[str]:
    name = f"konvrt_bench_{secrets.token_hex(4)}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        db = Database(f"{server}/{name}")
        schema.upgrade(db.engine)
        db.dispose()
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _env(work: Path, url: str, role: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONVRT_")}
    env.update(
        KONVRT_DATA_DIR=str(work / role), KONVRT_DATABASE_URL=url, KONVRT_STORAGE_URL=f"file://{work / 'files'}",
        KONVRT_DEMO_ACCOUNT="false", KONVRT_WORKERS="1", KONVRT_RATELIMIT_PRO="100000",
        KONVRT_PRO_CONCURRENCY="100",
    )  # fmt: skip
    env.update({f"KONVRT_{k.upper()}": v for k, v in extra.items()})
    return env


def _cli(env: dict[str, str], *args: str) -> str:
    run = subprocess.run([sys.executable, "-m", "konvrt", *args], env=env, capture_output=True, text=True, check=True)
    return run.stdout.strip()


def _spawn(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    out = subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "konvrt", *args], env=env, stdout=out, stderr=out)


@contextmanager
def _cluster(work: Path, url: str, workers: int) -> Iterator[tuple[str, str, list[subprocess.Popen[bytes]]]]:
    api_env = _env(work, url, "api")
    _cli(api_env, "accounts", "create", "bench@example.com", "--plan", "pro")
    _cli(api_env, "credits", "grant", "bench@example.com", "100000")
    key = _cli(api_env, "keys", "create", "bench@example.com")
    port = _free_port()
    procs = [_spawn(api_env, "serve", "--port", str(port), "--no-workers")]
    procs += [_spawn(_env(work, url, f"w{i}"), "worker") for i in range(workers)]
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                httpx.get(f"{base}/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        time.sleep(2)  # the workers are up and idle
        yield base, key, procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(60)


def _submit(base: str, key: str, clip: Path, **fields: str) -> str:
    with clip.open("rb") as f:
        res = httpx.post(f"{base}/api/v1/compress", headers={"Authorization": f"Bearer {key}"},
                         files={"file": f}, data=fields, timeout=60)  # fmt: skip
    res.raise_for_status()
    return str(res.json()["job_id"])


def throughput(server: str, work: Path, clip: Path, jobs: int, workers: int) -> float:
    with _database(server) as url, _cluster(work / f"t{workers}", url, workers) as (base, key, _):
        db = Database(url)
        start = time.perf_counter()
        for _ in range(jobs):
            _submit(base, key, clip)
        while True:
            with db.read() as session:
                done = session.scalar(select(func.count()).where(Job.status.in_(("completed", "failed"))))
            if done == jobs:
                break
            time.sleep(0.1)
        elapsed = time.perf_counter() - start
        with db.read() as session:
            failed = session.scalar(select(func.count()).where(Job.status == "failed"))
        db.dispose()
    assert not failed, f"{failed} jobs failed"
    return elapsed


def takeover(server: str, work: Path, clip: Path) -> float:
    """Seconds from a kill -9 of the worker mid-encode to the job running on the other worker."""
    with _database(server) as url, _cluster(work / "kill", url, 2) as (base, key, procs):
        db = Database(url)
        job_id = _submit(base, key, clip, codec="h265")
        while True:
            with db.read() as session:
                job = session.get(Job, job_id)
                assert job is not None
                if job.status == "processing" and job.progress > 0:
                    owner = job.worker_id or ""
                    break
            time.sleep(0.05)
        pid = int(owner.split(":")[1])
        os.kill(pid, signal.SIGKILL)
        killed = time.perf_counter()
        while True:
            with db.read() as session:
                job = session.get(Job, job_id)
                assert job is not None
                if job.status == "processing" and job.worker_id and job.worker_id != owner:
                    break
            time.sleep(0.05)
        db.dispose()
        return time.perf_counter() - killed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        short = _clip(work / "short.mp4", 3, "640x360")
        results = {n: throughput(args.pg, work, short, args.jobs, n) for n in (1, 2, 3)}
        print(f"{args.jobs} jobs of a 3 s 640x360 clip (h264 crf 23), PostgreSQL, {os.cpu_count()} cores")
        for n, seconds in results.items():
            print(f"  {n} worker process{'es' if n > 1 else '  '}: {seconds:6.1f} s  {args.jobs / seconds:5.2f} jobs/s"
                  f"  x{results[1] / seconds:.2f} of one")  # fmt: skip
        lease = Settings().lease_seconds
        gap = takeover(args.pg, work, _clip(work / "long.mp4", 30, "1280x720"))
        print(f"kill -9 mid-encode -> running on another worker: {gap:.1f} s (lease {lease:g} s; aim under 30 s)")


if __name__ == "__main__":
    main()
