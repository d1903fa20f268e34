"""The one place exceptions become SPEC's JSON error body: {"success": false, "error", "code"[, "field"]}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from konvrt.errors import KonvrtError, Unauthorized

log = logging.getLogger("konvrt.api")

_HTTP_CODES = {
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "This endpoint does not accept that method."),
}


def error_response(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


async def _konvrt_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KonvrtError)
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return error_response(exc.status, exc.body(), headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code, sentence = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    return error_response(exc.status_code, {"success": False, "error": sentence, "code": code}, dict(exc.headers or {}))


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
    body: dict[str, object] = {
        "success": False,
        "error": f"{'.'.join(where) or 'request'}: {first.get('msg', 'invalid')}",
        "code": "invalid_field",
    }
    if where:
        body["field"] = where[0]
    return error_response(400, body)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, {"success": False, "error": "Something went wrong on our side.", "code": "internal"})


def install(app: FastAPI) -> None:
    app.add_exception_handler(KonvrtError, _konvrt_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, _unexpected)
