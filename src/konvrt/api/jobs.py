"""GET /api/v1/status/:id and GET /api/v1/download/:id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from konvrt import jobs
from konvrt.api.deps import AccountDep, ServicesDep
from konvrt.api.remote_download import object_response, parse_range
from konvrt.db import Job, utcnow
from konvrt.errors import Conflict, Gone
from konvrt.filenames import clean_filename, content_disposition
from konvrt.services import Services
from konvrt.storage_s3 import S3Storage
from konvrt.webhooks.events import read_webhook_status

router = APIRouter()


def iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def output_filename(input_filename: str) -> str:
    # The client's name never reaches a path; only its stem is echoed back, in a header.
    stem = PurePath(clean_filename(input_filename, "video")).stem or "video"
    return f"{stem}-compressed.mp4"


def compression_ratio(input_size: int, output_size: int) -> int:
    return round(100 * (1 - output_size / input_size)) if input_size else 0


@dataclass(slots=True)
class StoredJob:
    """The columns `status_body` reads, as the status lane reads them without the ORM."""

    id: str
    status: str
    progress: int
    params: dict[str, Any]
    input_filename: str
    input_size: int
    credits_charged: int
    output_size: int | None
    note: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None


def status_body(job: Job | StoredJob) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status,
        "progress": job.progress,
        "input": {"filename": job.input_filename, "size_bytes": job.input_size},
        "params": job.params,
        "credits_charged": job.credits_charged,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
    }
    if job.status == jobs.JobStatus.COMPLETED and job.output_size is not None:
        body["output"] = {
            "filename": output_filename(job.input_filename),
            "size_bytes": job.output_size,
            "compression_ratio": compression_ratio(job.input_size, job.output_size),
            "download_url": f"/api/v1/download/{job.id}",
            "expires_at": iso(job.expires_at),
        }
        if job.note:
            body["note"] = job.note
    if job.status == jobs.JobStatus.FAILED:
        body["error"] = job.error
    return body


def _load(services: Services, job_id: str, account_id: int) -> Job:
    with services.db.read() as session:
        return jobs.get_for_account(session, job_id, account_id)


@router.get("/api/v1/status/{job_id}")
async def status(job_id: str, account: AccountDep, services: ServicesDep) -> dict[str, Any]:
    job = await services.read(_load, services, job_id, account.id)
    body = status_body(job)
    if job.webhook_url:
        body["webhook"] = await services.read(read_webhook_status, services.db, job)
    return body


@router.get("/api/v1/download/{job_id}", response_model=None)
@router.head("/api/v1/download/{job_id}", response_model=None, include_in_schema=False)  # size and ranges, no body
async def download(job_id: str, request: Request, account: AccountDep, services: ServicesDep) -> Response:
    job = await services.read(_load, services, job_id, account.id)
    if job.status != jobs.JobStatus.COMPLETED or job.output_key is None:
        if job.status == jobs.JobStatus.FAILED:
            raise Conflict(f"The job failed, so it has nothing to download: {job.error}", code="job_failed")
        raise Conflict(f"The job is {job.status}; download it once it is completed.", code="job_not_ready")
    if job.expired or (job.expires_at is not None and job.expires_at <= utcnow()):
        raise Gone(f"The download link expired at {iso(job.expires_at)}.", code="download_expired")
    path = services.storage.download_path(job.output_key)
    if path is None and isinstance(services.storage, S3Storage):  # object storage: streamed or redirected
        return await run_in_threadpool(
            object_response,
            services.storage,
            job.output_key,
            output_filename(job.input_filename),
            request.headers.get("range"),
            services.settings.s3_presigned_downloads,
        )
    if path is None or not path.exists():
        raise Gone("The output is no longer stored.", code="download_expired")
    disposition = content_disposition(output_filename(job.input_filename))
    # Our reading of Range, not Starlette's: an unsatisfiable one is SPEC's JSON 416, and one we do not
    # serve (malformed, another unit, several ranges) gets the whole file, as RFC 9110 allows.
    whole = parse_range(request.headers.get("range"), path.stat().st_size) is None
    response = WholeFileResponse if whole else FileResponse
    return response(path, media_type="video/mp4", headers={"Content-Disposition": disposition})


class WholeFileResponse(FileResponse):
    """A file answered whole, whatever Range header came with the request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(name, value) for name, value in scope["headers"] if name != b"range"]
        await super().__call__({**scope, "headers": headers}, receive, send)
