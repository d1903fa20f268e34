"""Jobs survive the server: queued jobs run after a restart, and a kill -9 mid-encode loses nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port, job_status, make_clip, wait_for_job


@contextmanager
def serve(data_dir: Path, port: int, **env: str) -> Iterator[subprocess.Popen[str]]:
    environ = {
        **os.environ,
        "KONVRT_DATA_DIR": str(data_dir),
        "KONVRT_RATELIMIT_PRO": "100000",  # these tests poll hard and are not about rate limits
        **{f"KONVRT_{k.upper()}": v for k, v in env.items()},
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "konvrt", "serve", "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/usage")
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(30)


def new_key(data_dir: Path) -> str:
    env = {**os.environ, "KONVRT_DATA_DIR": str(data_dir)}
    konvrt = [sys.executable, "-m", "konvrt"]
    subprocess.run(
        [*konvrt, "accounts", "create", "r@example.com", "--plan", "pro"], env=env, check=True, capture_output=True
    )
    run = subprocess.run(
        [*konvrt, "keys", "create", "r@example.com"], env=env, check=True, capture_output=True, text=True
    )
    return run.stdout.strip()


def test_queued_job_runs_after_a_restart(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    key = new_key(data)
    clip = make_clip(tmp_path / "clip.mp4", seconds=1)
    with serve(data, port, workers="0"):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as c:
            job_id = c.post("/api/v1/compress", files={"file": clip.open("rb")}).json()["job_id"]
            time.sleep(0.5)
            assert c.get(f"/api/v1/status/{job_id}").json()["status"] == "pending"
    with serve(data, port, workers="1"):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as c:
            assert wait_for_job(c, job_id)["status"] == "completed"


def test_job_killed_mid_encode_runs_again(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    key = new_key(data)
    clip = make_clip(tmp_path / "long.mp4", seconds=20, size="640x360")
    with serve(data, port, workers="1", lease_seconds="2", ffmpeg_threads="1") as first:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as c:
            job_id = c.post("/api/v1/compress", files={"file": clip.open("rb")}, data={"codec": "h265"}).json()[
                "job_id"
            ]
            deadline = time.monotonic() + 60
            while (status := job_status(c, job_id))["progress"] == 0:
                assert status["status"] in ("pending", "processing") and time.monotonic() < deadline
                time.sleep(0.1)
            assert status["status"] == "processing"
            first.send_signal(signal.SIGKILL)
    with serve(data, port, workers="1", lease_seconds="2") as second:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as c:
            done = wait_for_job(c, job_id, timeout=180)
            assert done["status"] == "completed", done
            assert c.get("/api/v1/usage").json()["credits"]["balance"] == 500 - 2, "charged once"
        assert second.poll() is None
    leftovers = [p for p in (data / "files").rglob("*") if p.is_file() and not re.search(r"output\.mp4$", p.name)]
    assert leftovers == [], "the input is deleted once the job ends"
