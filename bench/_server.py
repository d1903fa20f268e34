"""A `konvrt serve` process on a fresh data dir, with a pro account's key, for the benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class Server:
    url: str
    key: str
    proc: subprocess.Popen[bytes]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"}, timeout=600)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def konvrt_server(data_dir: Path, **settings: str) -> Iterator[Server]:
    # These benchmarks measure work, not limits (bench.status_rate measures those): lift the team's limit.
    env = {
        **os.environ,
        "KONVRT_DATA_DIR": str(data_dir),
        "KONVRT_DEMO_ACCOUNT": "false",
        "KONVRT_RATELIMIT_TEAM": "1000000000",
    }
    env.update({f"KONVRT_{k.upper()}": v for k, v in settings.items()})
    cli = [sys.executable, "-m", "konvrt"]
    subprocess.run(
        [*cli, "accounts", "create", "bench@example.com", "--plan", "team"], env=env, check=True, capture_output=True
    )
    subprocess.run([*cli, "credits", "grant", "bench@example.com", "1000000"], env=env, check=True, capture_output=True)
    key = subprocess.run(
        [*cli, "keys", "create", "bench@example.com"], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    port = _free_port()
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                httpx.get(url + "/api/v1/usage")
                break
            except httpx.ConnectError:
                if proc.poll() is not None:
                    raise RuntimeError("konvrt serve exited") from None
                time.sleep(0.1)
        yield Server(url, key, proc)
    finally:
        proc.terminate()
        proc.wait(30)
