"""The encode workers: claim a job, run it with a heartbeat, record the result; plus the periodic sweep."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from konvrt import cluster, jobs, observability
from konvrt.config import Settings
from konvrt.db import Database, Job
from konvrt.errors import KonvrtError
from konvrt.media.encode import compress
from konvrt.media.params import CompressParams
from konvrt.media.probe import probe
from konvrt.storage import Storage

log = logging.getLogger("konvrt.worker")


class _Encode:
    """One claimed job: keeps its lease alive and tells the encoder when to stop."""

    def __init__(self, pool: WorkerPool, job: Job, worker_id: str) -> None:
        self.pool, self.job_id, self.worker_id = pool, job.id, worker_id
        self.progress = 0
        self.lost = threading.Event()
        self.done = threading.Event()

    def on_progress(self, percent: int) -> None:
        self.progress = max(self.progress, min(99, percent))

    def should_stop(self) -> bool:
        return self.lost.is_set() or self.pool.stopping.is_set()

    def keep_alive(self) -> None:
        lease = timedelta(seconds=self.pool.settings.lease_seconds)
        interval = min(1.0, self.pool.settings.lease_seconds / 4)
        while not self.done.wait(interval):
            try:
                with self.pool.db.write() as session:
                    if not jobs.heartbeat(session, self.job_id, self.worker_id, lease, self.progress):
                        self.lost.set()  # canceled, or another worker took it over
                        return
            except Exception:  # a database hiccup: the lease has slack, try again next beat
                log.exception("heartbeat failed for %s", self.job_id)


class WorkerPool:
    """`size` threads, each running one FFmpeg at a time, plus a sweeper for leases and expired files."""

    def __init__(self, settings: Settings, db: Database, storage: Storage, size: int) -> None:
        self.settings, self.db, self.storage, self.size = settings, db, storage, size
        self.stopping = threading.Event()
        self._wake = threading.Condition()
        self._pending_wakeups = 0
        self._threads: list[threading.Thread] = []
        self.workspace = settings.data_dir / "work"
        self.caps = {plan: settings.concurrency_cap(plan) for plan in ("pro", "team")}
        self.announce: Callable[[], None] = lambda: None  # tells other machines a job is free again

    def start(self, *, sweeper: bool = True) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)
        base = f"{socket.gethostname()}:{os.getpid()}"
        for n in range(self.size):
            self._spawn(self._work_loop, f"{base}:{n}", f"konvrt-worker-{n}")
        if sweeper:
            self._spawn(self._sweep_loop, base, "konvrt-sweeper")

    def _spawn(self, target: object, arg: str, name: str) -> None:
        thread = threading.Thread(target=target, args=(arg,), name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    def notify(self) -> None:
        """A job was queued: wake one idle worker now instead of at its next poll."""
        with self._wake:
            self._pending_wakeups += 1
            self._wake.notify()

    def stop(self, timeout: float = 30) -> None:
        """Stop taking work; running encodes are stopped and handed back to the queue."""
        self.stopping.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def _idle(self, seconds: float) -> None:
        with self._wake:
            if self._pending_wakeups == 0:
                self._wake.wait(seconds)
            self._pending_wakeups = max(0, self._pending_wakeups - 1)

    def _work_loop(self, worker_id: str) -> None:
        lease = timedelta(seconds=self.settings.lease_seconds)
        while not self.stopping.is_set():
            try:
                with self.db.write() as session:
                    job = jobs.claim_next(session, worker_id, lease, self.settings.max_attempts, self.caps)
            except Exception:
                log.exception("could not claim a job")
                job = None
            if job is None:
                self._idle(1.0)
                continue
            with observability.job_context(job.id):
                self.run(job, worker_id)

    def run(self, job: Job, worker_id: str) -> None:
        encode = _Encode(self, job, worker_id)
        beat = threading.Thread(target=encode.keep_alive, name=f"heartbeat-{job.id}", daemon=True)
        beat.start()
        # A fresh folder per attempt: an FFmpeg orphaned by a killed worker cannot write into this one.
        workdir = Path(tempfile.mkdtemp(prefix=f"{job.id}.", dir=self.workspace))
        try:
            with observability.timed_encode():
                note = self._encode(job, workdir, encode)
        except KonvrtError as exc:
            self._finish_failed(job, worker_id, encode, exc.message)
        except Exception:
            log.exception("job %s crashed", job.id)
            self._finish_failed(job, worker_id, encode, "An internal error stopped the job; the credits were refunded.")
        else:
            with self.db.write() as session:
                jobs.complete(
                    session,
                    job.id,
                    worker_id,
                    output_size=self.storage.size(jobs.output_key(job.id)),
                    note=note,
                    ttl=timedelta(seconds=self.settings.download_ttl_seconds),
                )
            self.storage.delete(job.input_key)
        finally:
            encode.done.set()
            beat.join()
            shutil.rmtree(workdir, ignore_errors=True)

    def _encode(self, job: Job, workdir: Path, encode: _Encode) -> str | None:
        settings = self.settings
        output = workdir / "output.mp4"
        with self.storage.local_path(job.input_key) as source:
            info = probe(source, max_duration=settings.max_duration_seconds, max_pixels=settings.max_video_pixels)
            result = compress(
                settings.ffmpeg_exe,
                source,
                output,
                info,
                CompressParams.from_dict(job.params),
                threads=settings.threads_per_encode(),
                nice=settings.ffmpeg_nice,
                timeout=settings.job_timeout_seconds,
                stall_timeout=settings.stall_timeout_seconds,
                on_progress=encode.on_progress,
                should_stop=encode.should_stop,
            )
        self.storage.put_file(jobs.output_key(job.id), output)
        return result.note

    def _finish_failed(self, job: Job, worker_id: str, encode: _Encode, error: str) -> None:
        if encode.lost.is_set():
            return  # canceled, or taken over after our lease ran out: the row is someone else's now
        with self.db.write() as session:
            if self.stopping.is_set():
                jobs.release(session, job.id, worker_id)
                self.announce()
                return
            jobs.fail_owned(session, job.id, worker_id, error)
        self.storage.delete(job.input_key)

    def _sweep_loop(self, holder: str) -> None:
        interval = self.settings.sweep_interval_seconds
        # Every machine looks four times an interval; the shared turn row lets one of them sweep.
        while not self.stopping.wait(interval / 4):
            try:
                if cluster.take_turn(self.db, "sweep", interval, holder):
                    self.sweep()
            except Exception:
                log.exception("sweep failed")

    def sweep(self) -> None:
        """Fail jobs whose workers kept dying, and delete outputs past their expiry."""
        with self.db.write() as session:
            for job in jobs.fail_exhausted(session, self.settings.max_attempts):
                self.storage.delete(job.input_key)
            for job in jobs.expired_outputs(session):
                if job.output_key:
                    self.storage.delete(job.output_key)
                job.expired = True
