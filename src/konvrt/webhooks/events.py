"""A job's final event: recorded in the transaction that finishes the job, shown on its status, redelivered.

`install()` registers `record_final_event` as a finish hook of `konvrt.jobs`, so the event row exists
if and only if the job's final state does. After that transaction commits, in-process senders are
woken at once (`add_listener`); senders in other processes find the row at their next poll.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from konvrt import jobs
from konvrt.db import Database, Job, utcnow
from konvrt.errors import Conflict
from konvrt.webhooks.models import DeliveryState, WebhookDelivery

Listener = Callable[[], None]
_listeners: list[Listener] = []


def iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(12)


def build_payload(job: Job) -> dict[str, Any]:
    """The seed's body: job.completed with `output`, or job.failed with `error`."""
    status = str(job.status)
    body: dict[str, Any] = {"event": f"job.{status}", "job_id": job.id, "status": status}
    if status == jobs.JobStatus.COMPLETED:
        body["output"] = {
            "download_url": f"/api/v1/download/{job.id}",
            "size_bytes": job.output_size,
            "expires_at": iso(job.expires_at),
        }
    else:
        body["error"] = job.error
    body["timestamp"] = iso(job.completed_at or utcnow())
    return body


def encode_payload(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def record_final_event(session: Session, job: Job) -> None:
    """A finish hook: queue the job's webhook event in the job's own transaction."""
    if not job.webhook_url or job.status not in jobs.FINISHED:
        return
    if session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.job_id == job.id)) is not None:
        return  # one final event per job, however the finish was reached
    body = build_payload(job)
    session.add(
        WebhookDelivery(
            id=new_event_id(),
            job_id=job.id,
            account_id=job.account_id,
            event=body["event"],
            url=job.webhook_url,
            payload=encode_payload(body),
            state=DeliveryState.PENDING,
            next_attempt_at=utcnow(),
        )
    )
    _wake_after_commit(session)


def _wake_after_commit(session: Session) -> None:
    if _listeners and not session.info.get("konvrt_webhook_wake"):
        session.info["konvrt_webhook_wake"] = True
        sa_event.listen(session, "after_commit", _wake_listeners, once=True)


def _wake_listeners(session: Session) -> None:
    session.info.pop("konvrt_webhook_wake", None)
    for listener in list(_listeners):
        listener()


def install() -> None:
    """Register the finish hook (idempotent); call once per process before jobs finish."""
    if record_final_event not in jobs.finish_hooks:
        jobs.finish_hooks.append(record_final_event)


def add_listener(listener: Listener) -> None:
    _listeners.append(listener)


def remove_listener(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def webhook_status(session: Session, job: Job) -> dict[str, Any] | None:
    """The `webhook` object of GET /api/v1/status/:id; None when the job has no webhook_url."""
    if not job.webhook_url:
        return None
    row = session.scalar(select(WebhookDelivery).where(WebhookDelivery.job_id == job.id))
    if row is None:  # the job has not finished yet
        return {
            "url": job.webhook_url,
            "event_id": None,
            "state": DeliveryState.PENDING,
            "attempts": 0,
            "last_status_code": None,
            "last_error": None,
            "delivered_at": None,
            "next_attempt_at": None,
        }
    return {
        "url": row.url,
        "event_id": row.id,
        "state": row.state,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "last_error": row.last_error,
        "delivered_at": iso(row.delivered_at),
        "next_attempt_at": iso(row.next_attempt_at) if row.state == DeliveryState.PENDING else None,
    }


def read_webhook_status(db: Database, job: Job) -> dict[str, Any] | None:
    """`webhook_status` in a read transaction of its own (for the status route)."""
    if not job.webhook_url:
        return None
    with db.read() as session:
        return webhook_status(session, job)


def redeliver(session: Session, job: Job) -> WebhookDelivery:
    """Send the final event again: a new attempt now, the same event id, a fresh retry schedule."""
    if not job.webhook_url:
        raise Conflict("This job has no webhook_url, so there is nothing to redeliver.", code="no_webhook")
    row = session.scalar(select(WebhookDelivery).where(WebhookDelivery.job_id == job.id))
    if row is None:
        raise Conflict(
            f"The job is {job.status}; its webhook can be redelivered once it has finished.", code="job_not_ready"
        )
    now = utcnow()
    if row.lease_until is not None and row.lease_until > now:
        raise Conflict("A delivery attempt is in progress; try again when it has finished.", code="webhook_in_flight")
    row.state, row.failures, row.next_attempt_at = DeliveryState.PENDING, 0, now
    _wake_after_commit(session)
    return row
