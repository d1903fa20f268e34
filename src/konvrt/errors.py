"""Konvrt's exception tree. Each error carries an HTTP status, a machine code and a public sentence.

KonvrtError
 ├── BadRequest (400)
 │    ├── InvalidField (400, names the field)
 │    └── UnreadableMedia (400: not a readable video/image)
 ├── Unauthorized (401)
 ├── PaymentRequired (402)
 ├── Forbidden (403)
 ├── NotFound (404)
 ├── Conflict (409)
 ├── Gone (410)
 ├── PayloadTooLarge (413)
 ├── UnsupportedMedia (415)
 ├── TooManyRequests (429)
 ├── ServiceUnavailable (503)
 └── EncodeFailed (a job's failure; never an HTTP answer of its own)

Nothing here imports HTTP machinery: `api/errors.py` is the one place these become responses.
"""

from __future__ import annotations


class KonvrtError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"success": False, "error": self.message, "code": self.code}
        if self.field is not None:
            body["field"] = self.field
        return body


class BadRequest(KonvrtError):
    status = 400
    code = "bad_request"


class InvalidField(BadRequest):
    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, field=field)


class UnreadableMedia(BadRequest):
    code = "unreadable_media"


class Unauthorized(KonvrtError):
    status = 401
    code = "unauthorized"


class PaymentRequired(KonvrtError):
    status = 402
    code = "insufficient_credits"


class Forbidden(KonvrtError):
    status = 403
    code = "forbidden"


class NotFound(KonvrtError):
    status = 404
    code = "not_found"


class Conflict(KonvrtError):
    status = 409
    code = "conflict"


class Gone(KonvrtError):
    status = 410
    code = "gone"


class PayloadTooLarge(KonvrtError):
    status = 413
    code = "payload_too_large"


class UnsupportedMedia(KonvrtError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(KonvrtError):
    status = 429
    code = "rate_limited"


class ServiceUnavailable(KonvrtError):
    status = 503
    code = "service_unavailable"


class EncodeFailed(KonvrtError):
    """A job could not be processed; `message` is the sentence the status endpoint shows."""

    code = "encode_failed"
