"""Downloads of outputs kept in object storage: streamed through with byte ranges, or a presigned redirect."""

from __future__ import annotations

import re

from starlette.responses import RedirectResponse, Response, StreamingResponse

from konvrt.errors import Gone, KonvrtError
from konvrt.storage_s3 import S3Storage

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MP4 = "video/mp4"


class RangeNotSatisfiable(KonvrtError):
    status = 416
    code = "range_not_satisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` range -> (first, last) inclusive; None to send everything (absent or multi-range)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None  # several ranges or another unit: RFC 9110 lets us answer with the whole body
    start, end = match.groups()
    if not start and not end:
        return None
    if not start:  # the last N bytes
        first, last = max(0, size - int(end)), size - 1
    else:
        first, last = int(start), min(size - 1, int(end)) if end else size - 1
    if size == 0 or first >= size or first > last:
        raise RangeNotSatisfiable(f"The range {header} is outside the file's {size} bytes.")
    return first, last


def object_response(storage: S3Storage, key: str, filename: str, range_header: str | None, presign: bool) -> Response:
    if not storage.exists(key):
        raise Gone("The output is no longer stored.", code="download_expired")
    if presign:
        return RedirectResponse(storage.presigned_url(key, filename, MP4), status_code=307)
    size = storage.size(key)
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Accept-Ranges": "bytes"}
    wanted = parse_range(range_header, size)
    if wanted is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(storage.stream(key), media_type=MP4, headers=headers)
    first, last = wanted
    headers["Content-Length"] = str(last - first + 1)
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    return StreamingResponse(storage.stream(key, first, last), status_code=206, media_type=MP4, headers=headers)
