"""POST /api/v1/convert: stream the image to a scratch file, convert it in the bounded pool, answer the bytes.

Synchronous, unlike /compress: the response is the image. Everything that can be refused without
converting (size, fields, balance, a full pool) is refused before credits move; a conversion that
fails after the charge is refunded before the error is returned.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from konvrt import billing
from konvrt.api.deps import AccountDep, ServicesDep
from konvrt.api.idempotency import IdempotencyDep
from konvrt.api.openapi import CONVERT_BODY
from konvrt.errors import PaymentRequired
from konvrt.media.image import ImageResult, convert_image
from konvrt.media.image_params import ImageParams, parse_image_params
from konvrt.media.image_pool import ImagePool
from konvrt.services import Services
from konvrt.storage import LocalStorage
from konvrt.uploads import boundary_of, check_declared_length, receive_upload

router = APIRouter()

FIELDS = ("file", "format", "quality", "width", "height", "fit")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@router.post("/api/v1/convert", response_class=Response, openapi_extra=CONVERT_BODY)
async def convert(request: Request, account: AccountDep, services: ServicesDep, _: IdempotencyDep) -> Response:
    settings = services.settings
    check_declared_length(request.headers.get("content-length"), settings.max_image_bytes, "Image")
    boundary_of(request.headers.get("content-type"))
    price = settings.image_credits
    if account.balance < price:  # the charge below is the real check; this one spares the upload
        raise _short(price, account.balance)
    scratch, key = _scratch(request, services), uuid.uuid4().hex
    try:
        upload = await receive_upload(
            request.stream().__aiter__(),
            request.headers.get("content-type"),
            scratch,
            key,
            max_bytes=settings.max_image_bytes,
            allowed_fields=FIELDS,
            idle_timeout=settings.upload_idle_timeout_seconds,
            what="Image",
        )
        params = parse_image_params(upload.fields)
        with _pool(request, services).reserve() as slot:
            charge_id = f"img_{key[:24]}"
            await run_in_threadpool(_charge, services, account.id, price, charge_id)
            try:
                with scratch.local_path(key) as path:
                    result = await slot.run(_convert, path, params, settings.max_image_pixels)
            except BaseException:
                await run_in_threadpool(_refund, services, account.id, charge_id)
                raise
    finally:
        scratch.delete(key)
    return Response(
        result.data, media_type=result.content_type, headers=_headers(upload.size, result, price, upload.filename)
    )


def _convert(path: Path, params: ImageParams, max_pixels: int) -> ImageResult:
    return convert_image(path, params, max_pixels=max_pixels)


def _charge(services: Services, account_id: int, price: int, charge_id: str) -> None:
    with services.db.write() as session:
        billing.charge(session, account_id, price, job_id=charge_id, note="image conversion")


def _refund(services: Services, account_id: int, charge_id: str) -> None:
    with services.db.write() as session:
        billing.refund(session, account_id, charge_id)


def _short(price: int, balance: int) -> PaymentRequired:
    return PaymentRequired(
        f"An image conversion costs {price} credit{'s' if price != 1 else ''} and the balance "
        f"is {balance}. Buy a credit pack."
    )


def _headers(original_size: int, result: ImageResult, price: int, filename: str) -> dict[str, str]:
    stem = _UNSAFE_NAME.sub("_", Path(filename).stem)[:100] or "image"
    return {
        "X-Original-Size": str(original_size),
        "X-Output-Size": str(len(result.data)),
        "X-Output-Format": result.format,
        "X-Output-Width": str(result.width),
        "X-Output-Height": str(result.height),
        "X-Credits-Charged": str(price),
        "Content-Disposition": f'inline; filename="{stem}.{result.format}"',
    }


def _pool(request: Request, services: Services) -> ImagePool:
    """One pool per app, made on first use (the route owns it; the app factory need not know)."""
    pool: ImagePool | None = getattr(request.app.state, "image_pool", None)
    if pool is None:
        settings = services.settings
        pool = request.app.state.image_pool = ImagePool(settings.image_threads, settings.image_queue)
    return pool


def _scratch(request: Request, services: Services) -> LocalStorage:
    """Uploads to convert stay on local disk whatever the storage backend: they live for one request."""
    scratch: LocalStorage | None = getattr(request.app.state, "image_scratch", None)
    if scratch is None:
        scratch = request.app.state.image_scratch = LocalStorage(services.settings.data_dir / "convert-scratch")
    return scratch
