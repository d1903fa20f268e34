"""The admin command line, run as a user runs it: a real process reading KONVRT_* settings."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import free_port, make_clip


def konvrt(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KONVRT_DATA_DIR": str(data_dir)}
    run = subprocess.run([sys.executable, "-m", "konvrt", *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def test_admin_commands_in_their_documented_forms(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert (
        "on the free plan with 0 credits"
        in konvrt(data, "accounts", "create", "a@example.com", "--plan", "free").stdout
    )
    key = konvrt(data, "keys", "create", "a@example.com").stdout
    assert re.fullmatch(r"kvrt_[A-Za-z0-9]{40}\n", key), "the key alone on stdout"
    assert "balance 500" in konvrt(data, "accounts", "set-plan", "a@example.com", "pro").stdout
    assert "balance 500" in konvrt(data, "accounts", "set-plan", "a@example.com", "pro").stdout, "granted once"
    assert "balance 2000" in konvrt(data, "accounts", "set-plan", "a@example.com", "team").stdout
    assert "balance 2250" in konvrt(data, "credits", "grant", "a@example.com", "250").stdout
    # Longer than the stored prefix yet not the whole key: it cannot be checked, so nothing is revoked.
    for unverifiable in (key.strip()[:12] + "WRONG", key.strip() + "x"):
        refused = konvrt(data, "keys", "revoke", unverifiable, check=False)
        assert refused.returncode == 1 and "whole key or its prefix" in refused.stderr, unverifiable
    assert "Revoked 1 key" in konvrt(data, "keys", "revoke", key.strip()[:12]).stdout
    again = konvrt(data, "keys", "revoke", key.strip(), check=False)
    assert again.returncode == 1 and "no live key" in again.stderr

    duplicate = konvrt(data, "accounts", "create", "A@example.com", "--plan", "pro", check=False)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    bad_plan = konvrt(data, "accounts", "create", "b@example.com", "--plan", "gold", check=False)
    assert bad_plan.returncode == 1 and "Unknown plan" in bad_plan.stderr
    assert "Traceback" not in duplicate.stderr + bad_plan.stderr


def test_serve_creates_a_demo_account_whose_key_works_at_once(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "KONVRT_DATA_DIR": str(tmp_path / "data"), "KONVRT_WORKERS": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "konvrt", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        key = ""
        while not key:
            line = server.stdout.readline()
            assert line, "serve exited before printing the demo key"
            if match := re.search(r"(kvrt_[A-Za-z0-9]{40})", line):
                key = match.group(1)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 30
        while True:
            try:
                usage = httpx.get(f"{base}/api/v1/usage", headers=headers)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert usage.json() == {"plan": "pro", "credits": {"balance": 500, "total_purchased": 500}}
        clip = make_clip(tmp_path / "clip.mp4", seconds=1)
        with clip.open("rb") as f:
            res = httpx.post(f"{base}/api/v1/compress", headers=headers, files={"file": f}, data={"codec": "h264"})
        assert res.status_code == 202, res.text
        job_id = res.json()["job_id"]
        deadline = time.monotonic() + 60
        while (status := httpx.get(f"{base}/api/v1/status/{job_id}", headers=headers).json())["status"] not in (
            "completed",
            "failed",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert status["status"] == "completed"
    finally:
        server.terminate()
        server.wait(30)
