"""The ASGI application: routers, error handling, and the services' lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from konvrt import __version__, dashboard
from konvrt.api import (
    compress,
    convert,
    errors,
    health,
    idempotency,
    jobs,
    listing,
    openapi,
    rate_limit,
    request_id,
    status_lane,
    usage,
)
from konvrt.config import Settings
from konvrt.observability import MetricsMiddleware
from konvrt.ratelimit import RateLimiter
from konvrt.services import Services
from konvrt.webhooks import routes as webhook_routes


def create_app(settings: Settings, *, services: Services | None = None, workers: int | None = None) -> FastAPI:
    """Build the app; with `workers` > 0 it also runs that many encode workers while it serves."""
    services = services or Services.build(settings)
    size = settings.workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if size > 0 and services.pool is None:
            services.start_workers(size)
        try:
            yield
        finally:
            if lane is not None:
                lane.close()
            services.close()

    app = FastAPIOffline(
        title="Konvrt",
        version=__version__,
        summary="Compress video with FFmpeg and convert images with libvips, on your own machines.",
        lifespan=lifespan,
        # Prometheus and our JSON logs are the telemetry; FastAPI's OpenTelemetry hooks would only cost
        # each request a look for providers nobody configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    errors.install(app)
    idempotency.install(app)
    limiter = RateLimiter(settings)
    rate_limit.install(app, limiter)
    app.add_middleware(MetricsMiddleware)  # outside the rate limiter: a 429 is timed too
    request_id.install_log_records()
    request_id.wrap_outermost(app)
    # Status polls skip the stack below when reads are local (see status_lane for what it answers).
    lane = status_lane.install(app, services.db.engine, limiter) if services.reads_are_local else None
    for module in (compress, convert, jobs, usage):
        app.include_router(module.router)
    app.include_router(webhook_routes.router)
    dashboard.install(app, services)  # server-rendered pages under /dashboard, with their cookie and headers
    app.include_router(listing.router)
    app.include_router(health.router)
    openapi.install(app)
    return app
