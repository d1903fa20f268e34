"""Video jobs: their states, and every write to a job row (create, claim, heartbeat, finish, expire)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from konvrt import billing, fairness
from konvrt.db import Job, utcnow
from konvrt.errors import NotFound


class JobStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


FINISHED = (JobStatus.COMPLETED, JobStatus.FAILED)

# Called inside the transaction that finishes a job (completed or failed), e.g. to queue a webhook event,
# so the event exists if and only if the job's new state does.
FinishHook = Callable[[Session, Job], None]
finish_hooks: list[FinishHook] = []

_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_job_id() -> str:
    return "j_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))


def input_key(job_id: str) -> str:
    # A server-chosen name with no extension: FFmpeg never guesses a demuxer from a client's name.
    return f"jobs/{job_id}/input"


def output_key(job_id: str) -> str:
    return f"jobs/{job_id}/output.mp4"


def create(
    session: Session,
    *,
    job_id: str,
    account_id: int,
    price: int,
    params: dict[str, Any],
    filename: str,
    size: int,
    info: dict[str, Any],
    webhook_url: str | None,
) -> Job:
    """Charge the account and record the job in one transaction: both happen, or neither."""
    billing.charge(session, account_id, price, job_id=job_id, note="video job")
    job = Job(
        id=job_id,
        account_id=account_id,
        status=JobStatus.PENDING,
        progress=0,
        params=params,
        input_filename=filename,
        input_key=input_key(job_id),
        input_size=size,
        input_info=info,
        credits_charged=price,
        webhook_url=webhook_url,
    )
    session.add(job)
    return job


def get_for_account(session: Session, job_id: str, account_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.account_id != account_id:
        # The same answer for "no such job" and "someone else's job": ids never leak across accounts.
        shown = job_id if len(job_id) <= 40 else job_id[:40] + "…"  # a client's id is echoed, not any length
        raise NotFound(f"No job {shown}.", code="job_not_found")
    return job


def claim_next(
    session: Session, worker_id: str, lease: timedelta, max_attempts: int, caps: Mapping[str, int] | None = None
) -> Job | None:
    """Take the oldest pending job, or one whose worker's lease ran out; None when there is none.

    `caps` (plan -> jobs running at once, 0 = no cap) keeps one account's backlog from starving others:
    an account at its cap is passed over, so the oldest job of any other account goes first.
    """
    now = utcnow()
    candidates = (
        select(Job.id, Job.account_id)
        .where(
            or_(
                Job.status == JobStatus.PENDING,
                (Job.status == JobStatus.PROCESSING) & (Job.lease_until < now),
            ),
            Job.attempts < max_attempts,
        )
        .order_by(Job.created_at)
        .limit(8)
    )
    if caps:
        candidates = candidates.where(fairness.under_cap(caps, now))
    postgres = session.bind is not None and session.bind.dialect.name == "postgresql"
    if postgres:
        candidates = candidates.with_for_update(skip_locked=True, of=Job)
    for job_id, account_id in session.execute(candidates).all():
        if caps and postgres and fairness.full_after_lock(session, account_id, caps, now):
            continue
        # Conditional update: whoever changes the row first owns the job; everyone else moves on.
        claimed = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(Job.status == JobStatus.PENDING, (Job.status == JobStatus.PROCESSING) & (Job.lease_until < now)),
            )
            .values(
                status=JobStatus.PROCESSING,
                worker_id=worker_id,
                lease_until=now + lease,
                attempts=Job.attempts + 1,
                started_at=now,
            )
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            return session.get(Job, job_id, populate_existing=True)
    return None


def heartbeat(session: Session, job_id: str, worker_id: str, lease: timedelta, progress: int) -> bool:
    """Extend the lease and record progress; False if the job is no longer this worker's."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.PROCESSING)
        .values(lease_until=utcnow() + lease, progress=progress)
    )
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def _owned(session: Session, job_id: str, worker_id: str) -> Job | None:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or job.worker_id != worker_id or job.status != JobStatus.PROCESSING:
        return None
    return job


def complete(
    session: Session, job_id: str, worker_id: str, *, output_size: int, note: str | None, ttl: timedelta
) -> Job | None:
    job = _owned(session, job_id, worker_id)
    if job is None:
        return None
    now = utcnow()
    job.status, job.progress, job.completed_at = JobStatus.COMPLETED, 100, now
    job.output_key, job.output_size, job.note = output_key(job_id), output_size, note
    job.expires_at, job.lease_until = now + ttl, None
    _run_finish_hooks(session, job)
    return job


def fail(session: Session, job: Job, error: str) -> None:
    """Mark a job failed with a sentence a person can act on, and refund what it was charged."""
    job.status, job.error, job.completed_at, job.lease_until = JobStatus.FAILED, error, utcnow(), None
    billing.refund(session, job.account_id, job.id)
    _run_finish_hooks(session, job)


def fail_owned(session: Session, job_id: str, worker_id: str, error: str) -> Job | None:
    job = _owned(session, job_id, worker_id)
    if job is not None:
        fail(session, job, error)
    return job


def release(session: Session, job_id: str, worker_id: str) -> None:
    """Hand a job back to the queue (graceful shutdown); the attempt does not count."""
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == JobStatus.PROCESSING)
        .values(status=JobStatus.PENDING, worker_id=None, lease_until=None, attempts=Job.attempts - 1, progress=0)
    )


def fail_exhausted(session: Session, max_attempts: int) -> list[Job]:
    """Jobs whose workers kept dying: failed and refunded instead of retried for ever."""
    now = utcnow()
    stale = session.scalars(
        select(Job).where(Job.status == JobStatus.PROCESSING, Job.lease_until < now, Job.attempts >= max_attempts)
    ).all()
    for job in stale:
        fail(session, job, f"The job was interrupted {job.attempts} times while processing and was given up.")
    return list(stale)


def expired_outputs(session: Session, now: datetime | None = None) -> list[Job]:
    """Completed jobs past their download expiry whose files are still kept."""
    now = now or utcnow()
    return list(
        session.scalars(
            select(Job).where(Job.status == JobStatus.COMPLETED, Job.expires_at < now, Job.expired.is_(False))
        ).all()
    )


def _run_finish_hooks(session: Session, job: Job) -> None:
    for hook in finish_hooks:
        hook(session, job)
