"""/healthz (the process answers), /readyz (database, queue and storage reachable), /metrics (Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from konvrt import observability
from konvrt.api.deps import ServicesDep
from konvrt.services import Services

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _checks(services: Services) -> dict[str, bool]:
    def database() -> bool:
        try:
            with services.db.read() as session:
                session.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    return {"database": database(), "queue": services.wakeup.healthy(), "storage": services.storage.healthy()}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    checks = await run_in_threadpool(_checks, services)
    if all(checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    down = ", ".join(name for name, ok in checks.items() if not ok)
    body = {"success": False, "error": f"Not ready: {down} unreachable.", "code": "not_ready", "checks": checks}
    return JSONResponse(body, status_code=503)


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    body = await run_in_threadpool(observability.exposition, services.db)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
