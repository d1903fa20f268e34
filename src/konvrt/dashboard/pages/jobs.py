"""The account's video jobs (live while any is unfinished), downloads, and the webhook signing secret."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy import select

from konvrt import jobs as job_rows
from konvrt.api.deps import ServicesDep
from konvrt.api.jobs import compression_ratio, output_filename
from konvrt.dashboard.browser_sessions import Viewer
from konvrt.dashboard.web import CsrfChecked, ViewerDep, flash, redirect, render
from konvrt.db import Job, utcnow
from konvrt.errors import KonvrtError
from konvrt.services import Services
from konvrt.webhooks import secret_store
from konvrt.webhooks.events import webhook_status

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@dataclass(frozen=True)
class JobRow:
    job: Job
    ratio: int | None
    downloadable: bool
    webhook: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.job.status in job_rows.FINISHED


def _rows(services: Services, account_id: int) -> list[JobRow]:
    now = utcnow()
    rows = []
    with services.db.read() as session:
        query = select(Job).where(Job.account_id == account_id).order_by(Job.created_at.desc(), Job.id).limit(PAGE_SIZE)
        for job in session.scalars(query):
            done = job.status == job_rows.JobStatus.COMPLETED and job.output_size is not None
            ratio = compression_ratio(job.input_size, job.output_size) if done and job.output_size else None
            live = done and not job.expired and job.expires_at is not None and job.expires_at > now
            rows.append(JobRow(job, ratio, live, webhook_status(session, job)))
    return rows


def _table_context(services: Services, viewer: Viewer) -> dict[str, Any]:
    rows = _rows(services, viewer.account.id)
    return {"viewer": viewer, "rows": rows, "live": any(not row.finished for row in rows)}


@router.get("/dashboard/jobs")
def jobs_page(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    with services.db.write() as session:  # the secret is made the first time anyone looks
        secret = secret_store.current_secret(session, viewer.account.id)
    context = _table_context(services, viewer) | {"nav": "jobs", "webhook_secret": secret}
    context["overlap_hours"] = f"{services.settings.webhook_secret_overlap_hours:g}"
    return render(request, "jobs.html", context)


@router.get("/dashboard/jobs/table")
def jobs_table(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    """The table alone, for the page's poll while a job is unfinished."""
    return render(request, "_jobs_table.html", _table_context(services, viewer))


def _stream(services: Services, key: str) -> Iterator[bytes]:
    with services.storage.local_path(key) as path, path.open("rb") as f:
        while chunk := f.read(1024 * 1024):
            yield chunk


@router.get("/dashboard/jobs/{job_id}/download")
def download(request: Request, job_id: str, viewer: ViewerDep, services: ServicesDep) -> Response:
    try:
        with services.db.read() as session:
            job = job_rows.get_for_account(session, job_id, viewer.account.id)
    except KonvrtError as exc:
        return render(request, "error.html", {"viewer": viewer, "title": "No such job", "message": exc.message}, 404)
    now = utcnow()
    if job.status != job_rows.JobStatus.COMPLETED or job.output_key is None:
        message = f"This job is {job.status}; its file can be downloaded once it has completed."
        return render(request, "error.html", {"viewer": viewer, "title": "Not ready", "message": message}, 409)
    if job.expired or (job.expires_at is not None and job.expires_at <= now):
        message = "This job's file has expired and was deleted. Run the job again to get a new one."
        return render(request, "error.html", {"viewer": viewer, "title": "Expired", "message": message}, 410)
    # The client named the input: keep the header to plain printable characters and no quotes.
    filename = "".join(c if c.isprintable() and c not in '"\\' else "_" for c in output_filename(job.input_filename))
    path = services.storage.download_path(job.output_key)
    if path is not None:
        return FileResponse(path, media_type="video/mp4", filename=filename)
    disposition = f'attachment; filename="{filename}"'
    headers = {"Content-Disposition": disposition}
    return StreamingResponse(_stream(services, job.output_key), media_type="video/mp4", headers=headers)


@router.post("/dashboard/webhook-secret/rotate", dependencies=[CsrfChecked])
def rotate_secret(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    overlap = timedelta(hours=services.settings.webhook_secret_overlap_hours)
    with services.db.write() as session:
        secret_store.rotate(session, viewer.account.id, overlap)
    hours = f"{services.settings.webhook_secret_overlap_hours:g}"
    flash(request, f"New webhook secret made. The previous one keeps signing alongside it for {hours} h.")
    return redirect("/dashboard/jobs#webhooks")
