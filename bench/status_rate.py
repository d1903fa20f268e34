"""bench.status_rate: 200 concurrent clients on GET /api/v1/status/:id, three runs in one go.

1. limits     `konvrt serve` with the default limit (60 requests per 60 s per account): 200 clients spread
              over 20 accounts poll for 30 s. Every account must get exactly 60 answers 200, not 59, not
              61, and nothing may be a 5xx.
2. konvrt     the same server setup with the limit out of the way: authenticated status calls per second.
3. bare       a bare Starlette endpoint answering the same JSON, served by uvicorn the same way.

Passes when (1) holds and (2) is at least 50% of (3). `python -m bench.status_rate [seconds]`.
The load comes from keep-alive connections in one asyncio process (raw HTTP/1.1, no client library
in the way), so the client costs the same per request in runs 2 and 3.

Runs 2 and 3 take turns, ROUNDS times, against both servers kept up side by side; the ratio is the
median of the rounds' ratios, so a neighbour's burst on a shared machine skews one round, not the
answer. "Out of the way" is a one-second window with a limit no client reaches: every request is
still counted, and each window holds what a real one holds (hundreds of entries). A limit of a
billion per minute would instead keep the whole run's requests in each account's window and make
every hit shift hundreds of thousands of them, a cost no real plan has.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLIENTS = 200
ROUNDS = 5
ACCOUNTS = 20
LIMIT = 60
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.IGNORECASE)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare(data_dir: Path) -> list[tuple[str, str]]:
    """Accounts, keys and one pending job each, written straight into a fresh data dir: (key, job id)."""
    from konvrt import accounts, jobs
    from konvrt.config import Settings
    from konvrt.services import Services

    services = Services.build(Settings(data_dir=data_dir, demo_account=False, workers=0))
    pairs = []
    with services.db.write() as session:
        for n in range(ACCOUNTS):
            account = accounts.create_account(session, services.settings, f"bench{n}@example.com", "pro")
            session.flush()
            key = accounts.create_key(session, account).key
            job_id = jobs.new_job_id()
            info = {"duration": 10.0, "width": 1280, "height": 720}
            jobs.create(
                session,
                job_id=job_id,
                account_id=account.id,
                price=1,
                params={"codec": "h264"},
                filename="clip.mp4",
                size=1_000_000,
                info=info,
                webhook_url=None,
            )
            pairs.append((key, job_id))
    services.close()
    return pairs


@contextmanager
def _serve(argv: list[str], env: dict[str, str], port: int) -> Iterator[None]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv} did not start") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def _konvrt(data_dir: Path, **settings: str) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "KONVRT_DATA_DIR": str(data_dir), "KONVRT_DEMO_ACCOUNT": "false"}
    env.update({f"KONVRT_{k.upper()}": v for k, v in settings.items()})
    with _serve([sys.executable, "-m", "konvrt", "serve", "--port", str(port), "--no-workers"], env, port):
        yield port


@contextmanager
def _bare(body: bytes) -> Iterator[int]:
    port = _free_port()
    env = {**os.environ, "BENCH_BODY": body.decode()}
    argv = [sys.executable, "-m", "uvicorn", "bench._status_bare:app", "--port", str(port), "--log-level", "info"]
    with _serve(argv, env, port):
        yield port


async def _client(port: int, request: bytes, stop_at: float, out: list[tuple[int, int]], who: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < stop_at:
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            match = _LENGTH.search(head)
            await reader.readexactly(int(match.group(1)) if match else 0)
            out.append((who, int(head[9:12])))
            if b"connection: close" in head.lower():
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()


def _request(path: str, key: str | None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


def _load(port: int, requests: list[bytes], seconds: float) -> tuple[list[tuple[int, int]], float]:
    """CLIENTS connections, client i sending requests[i % len(requests)]; (who, status) per answer."""
    out: list[tuple[int, int]] = []

    async def run() -> float:
        started = time.monotonic()
        stop_at = started + seconds
        await asyncio.gather(
            *(_client(port, requests[i % len(requests)], stop_at, out, i % len(requests)) for i in range(CLIENTS))
        )
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    return out, elapsed


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    ok = True
    with tempfile.TemporaryDirectory(prefix="konvrt-bench-") as tmp:
        limited_dir, open_dir = Path(tmp) / "limited", Path(tmp) / "open"
        limited, unlimited = _prepare(limited_dir), _prepare(open_dir)

        with _konvrt(limited_dir) as port:
            out, elapsed = _load(port, [_request(f"/api/v1/status/{j}", k) for k, j in limited], seconds)
        statuses = Counter(status for _, status in out)
        per_account = Counter(who for who, status in out if status == 200)
        counts = sorted(set(per_account[n] for n in range(ACCOUNTS)))
        exact = counts == [LIMIT] and statuses[200] == LIMIT * ACCOUNTS
        no_5xx = not any(status >= 500 for status in statuses)
        print(
            f"limits: {len(out)} answers in {elapsed:.1f} s from {CLIENTS} clients on {ACCOUNTS} accounts: "
            f"{dict(sorted(statuses.items()))}"
        )
        print(f"        answers 200 per account: {counts} (want exactly [{LIMIT}]) -> {'ok' if exact else 'WRONG'}")
        print(f"        5xx: {'none' if no_5xx else 'SOME'}")
        ok &= exact and no_5xx

        open_limit = {"ratelimit_pro": "1000000000", "ratelimit_window_seconds": "1"}
        with _konvrt(open_dir, **open_limit) as port:
            status_request = _request(f"/api/v1/status/{unlimited[0][1]}", unlimited[0][0])
            with socket.create_connection(("127.0.0.1", port)) as sock:  # the body the bare endpoint copies
                sock.sendall(status_request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                raw = b""
                while chunk := sock.recv(65536):
                    raw += chunk
            body = raw.split(b"\r\n\r\n", 1)[1]
            json.loads(body)
            with _bare(body) as bare_port:
                konvrt_requests = [_request(f"/api/v1/status/{j}", k) for k, j in unlimited]
                _load(port, konvrt_requests, 1.0)  # warm up: first polls, connections, caches
                _load(bare_port, [_request("/status", None)], 1.0)
                ratios, konvrt_runs, bare_runs = [], [], []
                for _ in range(ROUNDS):
                    out, elapsed = _load(port, konvrt_requests, seconds / ROUNDS)
                    bad = [status for _, status in out if status != 200]
                    ok &= not bad
                    konvrt_runs.append((len(out) - len(bad)) / elapsed)
                    out, elapsed = _load(bare_port, [_request("/status", None)], seconds / ROUNDS)
                    bare_runs.append(sum(1 for _, status in out if status == 200) / elapsed)
                    ratios.append(konvrt_runs[-1] / bare_runs[-1] if bare_runs[-1] else 0.0)
                    print(
                        f"round:  konvrt {konvrt_runs[-1]:,.0f}/s ({len(bad)} not 200), bare {bare_runs[-1]:,.0f}/s, "
                        f"ratio {ratios[-1]:.0%}"
                    )
        ratio = statistics.median(ratios)
        print(f"konvrt: {statistics.median(konvrt_runs):,.0f} authenticated status calls/s (median of {ROUNDS} rounds)")
        print(f"bare:   {statistics.median(bare_runs):,.0f} requests/s (Starlette, same JSON, same uvicorn)")
        verdict = "ok" if ratio >= 0.5 else "TOO SLOW"
        print(f"ratio:  konvrt / bare = {ratio:.0%}, the median of the rounds' (want >= 50%) -> {verdict}")
        ok &= ratio >= 0.5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
