"""POST /api/v1/jobs/:id/webhook/redeliver: send a job's final event again."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from konvrt import jobs
from konvrt.api.deps import AccountDep, ServicesDep
from konvrt.db import Database
from konvrt.webhooks import events

router = APIRouter()


def _redeliver(db: Database, job_id: str, account_id: int) -> dict[str, Any]:
    with db.write() as session:
        job = jobs.get_for_account(session, job_id, account_id)
        events.redeliver(session, job)
        session.flush()
        return {"success": True, "job_id": job.id, "webhook": events.webhook_status(session, job)}


@router.post("/api/v1/jobs/{job_id}/webhook/redeliver", status_code=202)
async def redeliver(job_id: str, account: AccountDep, services: ServicesDep) -> dict[str, Any]:
    """A new attempt now, with the same event id; 409 before the job has finished or without a webhook_url."""
    return await run_in_threadpool(_redeliver, services.db, job_id, account.id)
