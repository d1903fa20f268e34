"""The OpenAPI description: the streamed multipart bodies FastAPI cannot see, SPEC's error body on every
code each operation really answers, the bearer scheme, and the headers every API response carries.

Routes that read the raw stream add `openapi_extra=COMPRESS_BODY` (or `CONVERT_BODY`); routes may
declare their own error codes with `responses=error_responses(...)`; `install(app)` fills in the rest
from `_OPERATION_ERRORS` and drops FastAPI's default 422, which this API never answers.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """Every non-2xx answer."""

    success: Literal[False]
    error: str = Field(description="A sentence a person can act on.")
    code: str = Field(description="A machine-readable code, e.g. invalid_field, rate_limited.")
    field: str | None = Field(None, description="The form field or parameter at fault, when there is one.")


class CompressAccepted(BaseModel):
    success: Literal[True]
    job_id: str
    status: Literal["pending"]
    status_url: str
    credits_charged: int = Field(ge=0)


class InputInfo(BaseModel):
    filename: str
    size_bytes: int


class OutputInfo(BaseModel):
    filename: str
    size_bytes: int
    compression_ratio: int = Field(description="Percent saved; negative when the output is larger.")
    download_url: str
    expires_at: str | None


class JobStatusBody(BaseModel):
    job_id: str
    status: Literal["pending", "processing", "completed", "failed"]
    progress: int = Field(ge=0, le=100)
    input: InputInfo
    output: OutputInfo | None = Field(None, description="Once completed.")
    error: str | None = Field(None, description='Once failed; "canceled" when the owner canceled it.')
    credits_charged: int | None = None
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None


class JobPage(BaseModel):
    success: Literal[True]
    jobs: list[JobStatusBody]
    has_more: bool
    next_cursor: str | None


class Credits(BaseModel):
    balance: int
    total_purchased: int


class UsageBody(BaseModel):
    plan: Literal["free", "pro", "team"]
    credits: Credits


_SENTENCES = {
    400: "A field is missing or wrong (the body names it), the body is not well-formed multipart/form-data, "
    "or the upload stalled.",
    401: "Missing, malformed, unknown or revoked API key.",
    402: "The balance is short of the price.",
    403: "The plan has no API access (free).",
    404: "No such job in this account (another account's job is answered the same way).",
    409: "The job is not in a state that allows this (not finished yet, already finished, or a request with "
    "this Idempotency-Key is still in flight).",
    410: "The download expired and the file is gone.",
    413: "The upload is larger than allowed.",
    415: "The file is not a supported media type.",
    422: "This Idempotency-Key was used with different parameters.",
    429: "Rate limit reached; see Retry-After.",
    503: "The service cannot take work right now (busy or shutting down).",
    500: "An internal error.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody, "description": _SENTENCES[code]} for code in codes}


def _multipart(fields: dict[str, Any], required: list[str], file_types: str, description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": fields, "required": required},
                    "encoding": {"file": {"contentType": file_types}},
                }
            },
        }
    }


_INT_TEXT = {"type": "string", "pattern": r"^[0-9]+$"}  # form fields arrive as text

COMPRESS_BODY = _multipart(
    {
        "file": {"type": "string", "format": "binary", "description": "The video, at most 2 GiB."},
        "codec": {"type": "string", "enum": ["h264", "h265", "hevc", "av1"], "default": "h264"},
        "quality": {**_INT_TEXT, "description": "CRF, 18–51 (used when method=crf).", "default": "23"},
        "method": {"type": "string", "enum": ["crf", "bitrate", "size"], "default": "crf"},
        "bitrate": {"type": "string", "description": "Target video bitrate for method=bitrate: 2500k, 2.5M or kbit/s."},
        "target_size": {"type": "string", "description": "Target output size for method=size: 25MB, 8MiB or bytes."},
        "resolution": {"type": "string", "pattern": r"^[0-9]+x[0-9]+$", "description": "A box WIDTHxHEIGHT."},
        "preset": {"type": "string", "description": "Encoder speed preset."},
        "webhook_url": {"type": "string", "format": "uri", "maxLength": 2048},
        "allow_larger": {"type": "string", "enum": ["true", "false"], "default": "false"},
    },
    ["file"],
    "video/*, application/octet-stream",
    "Streamed straight to storage as it arrives; each field at most once, unknown fields refused.",
)

CONVERT_BODY = _multipart(
    {
        "file": {"type": "string", "format": "binary", "description": "The image, at most 50 MiB."},
        "format": {"type": "string", "enum": ["jpg", "jpeg", "png", "webp", "avif", "gif", "tiff"]},
        "quality": {**_INT_TEXT, "description": "1–100.", "default": "80"},
        "width": {**_INT_TEXT, "description": "A positive integer."},
        "height": {**_INT_TEXT, "description": "A positive integer."},
        "fit": {"type": "string", "enum": ["cover", "contain", "fill", "inside", "outside"]},
    },
    ["file", "format"],
    "image/*, application/octet-stream",
    "Streamed to a scratch file as it arrives; each field at most once, unknown fields refused.",
)

_BINARY = {"schema": {"type": "string", "format": "binary"}}

# Codes each operation answers besides 401, 403, 429 and 500, which every authenticated one may answer.
_OPERATION_ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/api/v1/compress"): (400, 402, 409, 413, 415, 422, 503),
    ("post", "/api/v1/convert"): (400, 402, 409, 413, 415, 422, 503),
    ("get", "/api/v1/status/{job_id}"): (404,),
    ("get", "/api/v1/download/{job_id}"): (404, 409, 410),
    ("get", "/api/v1/usage"): (),
    ("get", "/api/v1/jobs"): (400,),
    ("delete", "/api/v1/jobs/{job_id}"): (404, 409),
    ("post", "/api/v1/jobs/{job_id}/webhook/redeliver"): (404, 409),
}

_SUCCESS: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("post", "/api/v1/compress"): (
        "202",
        {"application/json": {"schema": {"$ref": "#/components/schemas/CompressAccepted"}}},
    ),
    ("get", "/api/v1/status/{job_id}"): (
        "200",
        {"application/json": {"schema": {"$ref": "#/components/schemas/JobStatusBody"}}},
    ),
    ("get", "/api/v1/jobs"): ("200", {"application/json": {"schema": {"$ref": "#/components/schemas/JobPage"}}}),
    ("delete", "/api/v1/jobs/{job_id}"): (
        "200",
        {"application/json": {"schema": {"$ref": "#/components/schemas/JobStatusBody"}}},
    ),
    ("get", "/api/v1/usage"): ("200", {"application/json": {"schema": {"$ref": "#/components/schemas/UsageBody"}}}),
    ("get", "/api/v1/download/{job_id}"): ("200", {"video/mp4": _BINARY}),
    ("post", "/api/v1/convert"): (
        "200",
        {f"image/{kind}": _BINARY for kind in ("jpeg", "png", "webp", "avif", "gif", "tiff")},
    ),
}

_HEADERS = {
    "X-Request-Id": {
        "description": "This request's id (the client's own when it sent a sane one).",
        "schema": {"type": "string"},
    },
    "X-RateLimit-Limit": {"description": "Requests allowed per window.", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the window.", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {
        "description": "Unix time at which a request leaves the window.",
        "schema": {"type": "integer"},
    },
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
_MODELS = (ErrorBody, CompressAccepted, JobStatusBody, JobPage, UsageBody)


def _schemas() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _error(code: int) -> dict[str, Any]:
    return {
        "description": _SENTENCES[code],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def describe(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, summary=app.summary, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(_schemas())
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "kvrt_…"}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            success = _SUCCESS.get((method, path))
            if success is not None:
                status, content = success
                responses.pop("200" if status != "200" else "", None)
                responses[status] = {**responses.get(status, {}), "description": "Success.", "content": content}
            if (method, path) == ("get", "/api/v1/download/{job_id}"):
                responses["206"] = {"description": "The byte range asked for.", "content": {"video/mp4": _BINARY}}
            operation["security"] = [{"bearer": []}]  # the Authorization header, described once as a scheme
            parameters = [p for p in operation.get("parameters", []) if p["name"].lower() != "authorization"]
            operation["parameters"] = parameters
            for code in (*_OPERATION_ERRORS.get((method, path), ()), 401, 403, 429, 500):
                responses.setdefault(str(code), _error(code))
            for status, response in responses.items():
                response["headers"] = {**_HEADERS, **(_RETRY_AFTER if status == "429" else {})}
    return schema


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe(app)
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 (FastAPI's documented way to customise the schema)
