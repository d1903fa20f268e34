"""GET /api/v1/jobs (newest first, cursor pagination, status filter) and DELETE /api/v1/jobs/:id (cancel)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import and_, or_, select
from starlette.concurrency import run_in_threadpool

from konvrt import jobs
from konvrt.api.deps import AccountDep, ServicesDep
from konvrt.api.jobs import status_body
from konvrt.api.openapi import error_responses
from konvrt.db import Job
from konvrt.errors import Conflict, InvalidField
from konvrt.services import Services

router = APIRouter()

CANCELED = "canceled"  # the error of a job its owner canceled (status "failed", credits refunded)
MAX_PAGE = 100


def encode_cursor(job: Job) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, job_id = raw.split("|", 1)
        return datetime.fromisoformat(moment), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidField("cursor", "The cursor is not one this API gave out; use next_cursor as it was.") from None


def _list(services: Services, account_id: int, status: str | None, limit: int, cursor: str | None) -> dict[str, Any]:
    query = select(Job).where(Job.account_id == account_id)
    if status is not None:
        query = query.where(Job.status == status)
    if cursor is not None:
        moment, job_id = decode_cursor(cursor)
        query = query.where(or_(Job.created_at < moment, and_(Job.created_at == moment, Job.id < job_id)))
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    with services.db.read() as session:
        rows = list(session.scalars(query).all())
    page, more = rows[:limit], len(rows) > limit
    return {
        "success": True,
        "jobs": [status_body(job) for job in page],
        "has_more": more,
        "next_cursor": encode_cursor(page[-1]) if more else None,
    }


@router.get("/api/v1/jobs", responses=error_responses(400))
async def list_jobs(
    account: AccountDep,
    services: ServicesDep,
    status: Annotated[
        jobs.JobStatus | None, Query(description="Only jobs in this state (pending, processing, completed, failed).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Jobs per page.")] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page.")] = None,
) -> dict[str, Any]:
    """The account's video jobs, newest first. Pass `next_cursor` back as `cursor` for the next page."""
    return await run_in_threadpool(_list, services, account.id, status, limit, cursor)


def _cancel(services: Services, job_id: str, account_id: int) -> dict[str, Any]:
    with services.db.write() as session:
        job = jobs.get_for_account(session, job_id, account_id)
        session.refresh(job, with_for_update=True)  # PostgreSQL: a worker finishing it now waits for us
        if job.status in jobs.FINISHED:
            raise Conflict(
                f"The job is already {job.status}; only pending or processing jobs can be canceled.",
                code="job_finished",
            )
        # jobs.fail refunds and queues the job.failed webhook in this transaction. A worker running the
        # job finds at its next heartbeat (within a second) that the row is no longer its own, and stops FFmpeg.
        jobs.fail(session, job, CANCELED)
        body = status_body(job)
        input_key = job.input_key
    services.storage.delete(input_key)
    return {"success": True, **body}


@router.delete("/api/v1/jobs/{job_id}", responses=error_responses(404, 409))
async def cancel_job(job_id: str, account: AccountDep, services: ServicesDep) -> dict[str, Any]:
    """Cancel a pending or processing job: status `failed`, error `canceled`, credits refunded."""
    return await run_in_threadpool(_cancel, services, job_id, account.id)
