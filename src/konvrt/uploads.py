"""Streams a multipart/form-data body straight into storage: one copy, byte-counted, limits enforced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Collection
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from konvrt.errors import BadRequest, InvalidField, PayloadTooLarge
from konvrt.observability import UPLOAD_BYTES
from konvrt.storage import Storage

# Room for the form fields and part headers around the file itself.
_ENVELOPE_BYTES = 64 * 1024
_MAX_FIELD_BYTES = 4096
_MAX_BOUNDARY = 70  # RFC 2046 section 5.1.1


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str = ""
    size: int = 0
    received_file: bool = False


NODE_HINT = (
    " Node's fetch sends a `form-data` package object as the text '[object FormData]': use the built-in"
    ' FormData with a Blob instead, e.g. form.append("file", await fs.openAsBlob("input.mp4"), "input.mp4").'
)


def boundary_of(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    if kind != b"multipart/form-data":
        got = kind.decode("latin-1") or "no Content-Type"
        raise BadRequest(
            f"Send the request as multipart/form-data with the file in a 'file' field (got {got})."
            # text/plain is what Node's fetch makes of a form-data package object; other clients need no hint.
            + (NODE_HINT if kind == b"text/plain" else ""),
            code="not_multipart",
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("The multipart/form-data body has no boundary.", code="missing_boundary")
    if len(boundary) > _MAX_BOUNDARY:
        raise BadRequest(
            f"The multipart boundary is {len(boundary)} characters long; RFC 2046 allows at most {_MAX_BOUNDARY}.",
            code="malformed_multipart",
        )
    return boundary


def check_declared_length(content_length: str | None, max_bytes: int, what: str) -> None:
    """Refuse a body that says it is too large before reading a byte of it."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise BadRequest("Content-Length is not a number.", code="bad_content_length") from None
    if declared > max_bytes + _ENVELOPE_BYTES:
        raise PayloadTooLarge(f"{what} files may be at most {_human(max_bytes)}.")
    if declared == 0:
        raise BadRequest("The request body is empty; send the file in a 'file' field.", code="empty_body")


class _FormReader:
    """python-multipart callbacks that write the file part into storage and keep the small fields."""

    def __init__(self, storage: Storage, key: str, max_bytes: int, allowed: Collection[str], what: str) -> None:
        self.storage, self.key, self.max_bytes, self.allowed, self.what = storage, key, max_bytes, allowed, what
        self.upload = Upload()
        self.files = ExitStack()
        self._header_field = b""
        self._headers: dict[bytes, bytes] = {}
        self._name = ""
        self._value = bytearray()
        self._sink: BinaryIO | None = None
        self.ended = False

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _end(self) -> None:
        self.ended = True

    def _part_begin(self) -> None:
        self._headers, self._header_field, self._value, self._sink = {}, b"", bytearray(), None

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field = data[start:end].lower()

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._headers[self._header_field] = self._headers.get(self._header_field, b"") + data[start:end]

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name not in self.allowed:
            raise InvalidField(self._name or "(unnamed)", f"Unknown form field {self._name!r}.")
        if self._name in self.upload.fields or (self._name == "file" and self.upload.received_file):
            raise InvalidField(self._name, f"The form field {self._name!r} is given more than once.")
        if self._name == "file":
            if b"filename" not in options:
                raise InvalidField("file", "The 'file' field must be a file upload, not text.")
            self.upload.filename = options[b"filename"].decode("utf-8", "replace")
            self.upload.received_file = True
            self._sink = self.files.enter_context(self.storage.writer(self.key))

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._sink is not None:
            self.upload.size += end - start
            if self.upload.size > self.max_bytes:
                raise PayloadTooLarge(f"{self.what} files may be at most {_human(self.max_bytes)}.")
            self._sink.write(data[start:end])
        else:
            self._value += data[start:end]
            if len(self._value) > _MAX_FIELD_BYTES:
                raise InvalidField(self._name, f"The form field {self._name!r} is too long.")

    def _part_end(self) -> None:
        if self._sink is not None:
            self.files.close()  # publishes the file under its key
            self._sink = None
        elif self._name:
            try:
                self.upload.fields[self._name] = self._value.decode()
            except UnicodeDecodeError:
                raise InvalidField(self._name, f"The form field {self._name!r} is not UTF-8 text.") from None


async def receive_upload(
    chunks: AsyncIterator[bytes],
    content_type: str | None,
    storage: Storage,
    key: str,
    *,
    max_bytes: int,
    allowed_fields: Collection[str],
    idle_timeout: float,
    what: str = "Video",
) -> Upload:
    """Parse the body as it arrives; the file lands under `key`, or nothing is left behind."""
    reader = _FormReader(storage, key, max_bytes, allowed_fields, what)
    parser = MultipartParser(boundary_of(content_type), reader.callbacks())  # type: ignore[arg-type]
    try:
        with reader.files:
            await _feed(parser, chunks, idle_timeout)
            if not reader.ended:
                raise BadRequest("The multipart body ended before its closing boundary.", code="truncated_body")
    except BaseException:
        storage.delete(key)
        raise
    if not reader.upload.received_file:
        raise InvalidField("file", "The 'file' field is required.")
    if reader.upload.size == 0:
        storage.delete(key)
        raise InvalidField("file", "The uploaded file is empty.")
    UPLOAD_BYTES.labels(what.lower()).inc(reader.upload.size)
    return reader.upload


async def _feed(parser: MultipartParser, chunks: AsyncIterator[bytes], idle_timeout: float) -> None:
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(anext(chunks), idle_timeout)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise BadRequest(
                    f"The upload stalled: no data arrived for {idle_timeout:g} seconds.", code="upload_timeout"
                ) from None
            except ClientDisconnect:  # nobody will read the answer; it only has to be an ordinary 4xx
                raise BadRequest(
                    "The client closed the connection before the upload finished.", code="client_disconnected"
                ) from None
            if chunk:
                parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        raise BadRequest(f"The multipart body is malformed: {exc}", code="malformed_multipart") from None


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"
