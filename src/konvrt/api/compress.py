"""POST /api/v1/compress: stream the upload into storage, probe it, charge, and queue the job."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from konvrt import billing, jobs
from konvrt.api.deps import AccountDep, ServicesDep
from konvrt.api.idempotency import IdempotencyDep
from konvrt.api.openapi import COMPRESS_BODY
from konvrt.filenames import clean_filename
from konvrt.media.params import CompressParams, check_feasible, parse_compress_params
from konvrt.media.probe import MediaInfo, probe
from konvrt.services import Services
from konvrt.uploads import boundary_of, check_declared_length, receive_upload
from konvrt.webhooks.netguard import validate_webhook_url

router = APIRouter()

FIELDS = (
    "file",
    "codec",
    "quality",
    "method",
    "bitrate",
    "target_size",
    "resolution",
    "preset",
    "webhook_url",
    "allow_larger",
)


@router.post("/api/v1/compress", status_code=202, openapi_extra=COMPRESS_BODY)
async def compress(request: Request, account: AccountDep, services: ServicesDep, _: IdempotencyDep) -> JSONResponse:
    settings = services.settings
    check_declared_length(request.headers.get("content-length"), settings.max_video_bytes, "Video")
    boundary_of(request.headers.get("content-type"))
    job_id = jobs.new_job_id()
    key = jobs.input_key(job_id)
    upload = await receive_upload(
        request.stream().__aiter__(),
        request.headers.get("content-type"),
        services.storage,
        key,
        max_bytes=settings.max_video_bytes,
        allowed_fields=FIELDS,
        idle_timeout=settings.upload_idle_timeout_seconds,
    )
    try:
        params = parse_compress_params(upload.fields)
        webhook_url = upload.fields.get("webhook_url") or None
        if webhook_url is not None:
            webhook_url = await run_in_threadpool(
                validate_webhook_url, webhook_url, allow_private=settings.webhook_allow_private
            )
        info = await run_in_threadpool(_probe, services, key)
        check_feasible(params, info)
        price = billing.video_price(settings, upload.size, params.codec)
        filename = clean_filename(upload.filename, "video")  # display text only, never a path
        await run_in_threadpool(
            _record, services, job_id, account.id, price, params, filename, upload.size, info, webhook_url
        )
    except BaseException:
        services.storage.delete(key)
        raise
    services.job_queued()
    return JSONResponse(
        {
            "success": True,
            "job_id": job_id,
            "status": "pending",
            "status_url": f"/api/v1/status/{job_id}",
            "credits_charged": price,
        },
        status_code=202,
    )


def _probe(services: Services, key: str) -> MediaInfo:
    settings = services.settings
    with services.storage.local_path(key) as path:
        return probe(path, max_duration=settings.max_duration_seconds, max_pixels=settings.max_video_pixels)


def _record(
    services: Services,
    job_id: str,
    account_id: int,
    price: int,
    params: CompressParams,
    filename: str,
    size: int,
    info: MediaInfo,
    webhook_url: str | None,
) -> None:
    with services.db.write() as session:
        jobs.create(
            session,
            job_id=job_id,
            account_id=account_id,
            price=price,
            params=params.to_dict(),
            filename=filename,
            size=size,
            info=_jsonable(asdict(info)),
            webhook_url=webhook_url,
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
