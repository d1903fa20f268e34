"""Webhook delivery: completion -> first attempt latency, and 100 jobs completing at once.

    .venv/bin/python -m bench.webhooks [--jobs 50] [--burst 100]

Real SQLite database (WAL, as embedded mode runs), real sender threads, a real HTTP receiver on
loopback. A job "completes" through `konvrt.jobs.complete` in its own write transaction, exactly
as the worker pool does; the clock runs from that commit to the receiver reading the request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from konvrt import accounts, jobs, schema
from konvrt.config import Settings
from konvrt.db import Database
from konvrt.webhooks import events
from konvrt.webhooks.delivery import WebhookSenders


class Receiver:
    """Records (event id, attempt, arrival); fails the first attempt of each event when told to."""

    def __init__(self, fail_first: bool = False) -> None:
        self.fail_first = fail_first
        self.arrivals: dict[str, float] = {}  # job id -> first arrival
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                now = time.perf_counter()
                body = self.rfile.read(int(self.headers["Content-Length"]))
                attempt = self.headers["Konvrt-Delivery-Attempt"]
                with receiver.lock:
                    receiver.seen.append((self.headers["Konvrt-Event-Id"], attempt))
                    receiver.arrivals.setdefault(json.loads(body)["job_id"], now)
                self.send_response(500 if receiver.fail_first and attempt == "1" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 256
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Bench:
    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        values: dict[str, Any] = {"data_dir": data_dir, "webhook_allow_private": True, "demo_account": False}
        values.update(overrides)
        self.settings = Settings(**values)
        data_dir.mkdir(parents=True, exist_ok=True)
        events.install()
        self.db = Database(self.settings.resolved_database_url)
        schema.upgrade(self.db.engine)
        with self.db.write() as session:
            self.account_id = accounts.create_account(session, self.settings, "bench@example.com", "team").id

    def claimed_jobs(self, url: str, count: int) -> list[str]:
        """`count` jobs taken by workers, ready to complete."""
        ids = []
        for n in range(count):
            job_id = jobs.new_job_id()
            with self.db.write() as session:
                jobs.create(
                    session,
                    job_id=job_id,
                    account_id=self.account_id,
                    price=1,
                    params={},
                    filename=f"{n}.mp4",
                    size=1000,
                    info={},
                    webhook_url=url,
                )
            with self.db.write() as session:
                job = jobs.claim_next(session, f"w{n}", timedelta(minutes=5), 3)
                assert job is not None
            ids.append(job_id)
        return ids

    def complete(self, job_id: str, worker: str) -> float:
        """Complete the job in its own transaction; returns the moment it committed."""
        with self.db.write() as session:
            jobs.complete(session, job_id, worker, output_size=500, note=None, ttl=timedelta(hours=24))
        return time.perf_counter()


def wait_for(receiver: Receiver, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.arrivals) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(receiver.arrivals)} of {count} webhooks arrived in {timeout} s")
        time.sleep(0.005)


def latency(tmp: Path, count: int, *, wake: bool) -> list[float]:
    """Jobs completed one after another; seconds from each commit to its first attempt's arrival."""
    bench, receiver = Bench(tmp), Receiver()
    senders = WebhookSenders(bench.settings, bench.db)
    senders.start()
    if not wake:  # as if the senders ran in another process: only polling finds the events
        events.remove_listener(senders.notify)
    try:
        ids = bench.claimed_jobs(receiver.url, count)
        committed = {}
        for n, job_id in enumerate(ids):
            committed[job_id] = bench.complete(job_id, f"w{n}")
            time.sleep(0.05)  # jobs finish apart, as real encodes do
        wait_for(receiver, count, 30)
        return [receiver.arrivals[j] - committed[j] for j in ids]
    finally:
        senders.stop()
        receiver.close()
        bench.db.dispose()


def burst(tmp: Path, count: int, *, fail_first: bool) -> dict[str, Any]:
    """`count` jobs completing at the same moment, each in its own thread and transaction."""
    bench = Bench(tmp, webhook_retry_schedule=[0.2], webhook_retry_jitter=0.5)
    receiver = Receiver(fail_first=fail_first)
    senders = [WebhookSenders(bench.settings, bench.db) for _ in range(2)]  # two "processes" compete
    for s in senders:
        s.start()
    try:
        ids = bench.claimed_jobs(receiver.url, count)
        gate = threading.Barrier(count)
        committed: dict[str, float] = {}

        def finish(n: int, job_id: str) -> None:
            gate.wait()
            committed[job_id] = bench.complete(job_id, f"w{n}")

        threads = [threading.Thread(target=finish, args=(n, j)) for n, j in enumerate(ids)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expected = count * (2 if fail_first else 1)
        deadline = time.monotonic() + 60
        while len(receiver.seen) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)  # anything sent twice would arrive now
        per_attempt = Counter(receiver.seen)
        return {
            "jobs": count,
            "requests": len(receiver.seen),
            "expected_requests": expected,
            "events_delivered": len({e for e, _ in receiver.seen}),
            "duplicate_attempts": sum(1 for c in per_attempt.values() if c > 1),
            "all_done_s": round(max(receiver.arrivals.values()) - start, 3),
            "first_attempt_median_s": round(statistics.median(receiver.arrivals[j] - committed[j] for j in ids), 4),
        }
    finally:
        for s in senders:
            s.stop()
        receiver.close()
        bench.db.dispose()


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (
        f"median {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=50, help="jobs in the latency runs")
    parser.add_argument("--burst", type=int, default=100, help="jobs completing at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        woken = latency(root / "a", args.jobs, wake=True)
        print(f"completion -> first attempt, same process (woken on commit): {summary(woken)}")
        polled = latency(root / "b", args.jobs, wake=False)
        print(f"completion -> first attempt, other process (polling only):  {summary(polled)}")
        for fail_first, answer in ((False, 200), (True, 500)):
            result = burst(root / f"burst-{answer}", args.burst, fail_first=fail_first)
            print(f"{args.burst} jobs at once, every first attempt answered {answer}: {result}")


if __name__ == "__main__":
    main()
