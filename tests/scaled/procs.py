"""Real `konvrt serve` and `konvrt worker` processes for the scaled tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


def env_for(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KONVRT_") or k == "KONVRT_TESTDATA"}
    # Not about rate limits: the tests poll hard, and under load one encode outlasts 60 polls.
    env.update({"KONVRT_DATA_DIR": str(data_dir), "KONVRT_DEMO_ACCOUNT": "false", "KONVRT_RATELIMIT_PRO": "100000"})
    env.update({f"KONVRT_{k.upper()}": v for k, v in settings.items()})
    return env


def konvrt(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen([sys.executable, "-m", "konvrt", *args], env=env, stdout=out, stderr=out)
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def run_cli(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-m", "konvrt", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            assert proc.poll() is None, f"the server exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.terminate()
    return proc.wait(timeout)
