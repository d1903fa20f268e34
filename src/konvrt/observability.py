"""What operators see: Prometheus metrics, JSON log lines carrying request and job ids.

Process metrics (HTTP latency, upload bytes, encode seconds) live in one registry per process.
State that the whole cluster shares (jobs by state, queue depth, webhook attempts) is read from the
database when `/metrics` is scraped, so any API machine reports the same numbers.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, or_, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konvrt.db import Database, Job, utcnow

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
HTTP_SECONDS = Histogram(
    "konvrt_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
UPLOAD_BYTES = Counter("konvrt_upload_bytes", "Bytes of uploaded files received.", ["kind"], registry=REGISTRY)
ENCODE_SECONDS = Histogram(
    "konvrt_encode_seconds",
    "Wall time of one encode attempt, by outcome.",
    ["outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, float("inf")),
    registry=REGISTRY,
)
STATES = ("pending", "processing", "completed", "failed")

_job_id: ContextVar[str | None] = ContextVar("konvrt_job_id", default=None)


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Log lines written inside carry `job_id`."""
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


class _ClusterState:
    """Reads the shared state at scrape time (a custom collector)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Any]:
        from konvrt.webhooks.models import WebhookAttempt

        now = utcnow()
        with self.db.read() as session:
            counts = dict(session.execute(select(Job.status, func.count()).group_by(Job.status)).all())
            depth = session.scalar(
                select(func.count()).where(
                    or_(Job.status == "pending", (Job.status == "processing") & (Job.lease_until < now))
                )
            )
            ok = WebhookAttempt.status_code.between(200, 299)
            attempts = dict(session.execute(select(ok, func.count()).select_from(WebhookAttempt).group_by(ok)).all())
        jobs = GaugeMetricFamily("konvrt_jobs", "Video jobs by state.", labels=["state"])
        for state in STATES:
            jobs.add_metric([state], counts.get(state, 0))
        yield jobs
        yield GaugeMetricFamily(
            "konvrt_queue_depth", "Jobs waiting for a worker (new or lease lost).", value=depth or 0
        )
        hooks = CounterMetricFamily("konvrt_webhook_attempts", "Webhook POSTs made, by result.", labels=["result"])
        hooks.add_metric(["delivered"], attempts.get(True, 0))
        hooks.add_metric(["failed"], sum(n for k, n in attempts.items() if k is not True))
        yield hooks


def exposition(db: Database) -> bytes:
    shared = CollectorRegistry(auto_describe=False)
    shared.register(_ClusterState(db))
    return generate_latest(REGISTRY) + generate_latest(shared)


class MetricsMiddleware:
    """Times every HTTP request, labelled by its route template (never the raw path: ids would explode)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_SECONDS.labels(scope["method"], route, str(status[0])).observe(time.perf_counter() - started)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, job_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id and request_id != "-":
            line["request_id"] = request_id
        if (job_id := getattr(record, "job_id", None) or _job_id.get()) is not None:
            line["job_id"] = job_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's included) to stderr, as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # libvips narrates every load and save at INFO ("VIPS: …"); its warnings and errors still come through.
    logging.getLogger("pyvips").setLevel(max(level, logging.WARNING))


@contextmanager
def timed_encode() -> Iterator[None]:
    """Observe one encode attempt's wall time as completed, or failed when the block raises."""
    started, outcome = time.monotonic(), "failed"
    try:
        yield
        outcome = "completed"
    finally:
        ENCODE_SECONDS.labels(outcome).observe(time.monotonic() - started)
