"""Idempotency keys, Stripe's semantics: the first successful answer to (account, key) is kept for 24 h
and replayed to every retry that sends the same request; a retry with different parameters is refused.

A row is claimed (`in_flight`) before the request does any work, so racing retries find it and wait;
it becomes `done` with the answer when the request succeeds, and is deleted when it fails, so a retry
after an error (a 402, a bad field, a dropped connection) is processed afresh. Nothing here knows HTTP:
`api/idempotency.py` does the wire.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy import JSON, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from konvrt.db import Base, Database, UTCDateTime, utcnow

IN_FLIGHT, DONE = "in_flight", "done"
# A claim this old belonged to a process that died mid-request (a finished one always settles its row).
STALE_CLAIM = timedelta(hours=6)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("account_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    key: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    headers: Mapped[list[list[str]] | None] = mapped_column(JSON, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


@dataclass(frozen=True)
class Claimed:
    record_id: int


@dataclass(frozen=True)
class Existing:
    state: str
    fingerprint: str | None
    status_code: int | None
    headers: list[list[str]]
    body: bytes


def claim(db: Database, account_id: int, key: str, ttl: timedelta) -> Claimed | Existing:
    """Take (account, key) for this request, or report what another request with it did or is doing."""
    for _ in range(3):
        try:
            with db.write() as session:
                now = utcnow()
                session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - ttl))
                session.execute(
                    delete(IdempotencyRecord).where(
                        IdempotencyRecord.account_id == account_id,
                        IdempotencyRecord.key == key,
                        IdempotencyRecord.state == IN_FLIGHT,
                        IdempotencyRecord.created_at < now - STALE_CLAIM,
                    )
                )
                row = session.scalar(
                    select(IdempotencyRecord).where(
                        IdempotencyRecord.account_id == account_id, IdempotencyRecord.key == key
                    )
                )
                if row is not None:
                    return Existing(row.state, row.fingerprint, row.status_code, row.headers or [], row.body or b"")
                record = IdempotencyRecord(account_id=account_id, key=key, state=IN_FLIGHT)
                session.add(record)
                session.flush()
                return Claimed(record.id)
        except IntegrityError:  # PostgreSQL: another request inserted the same key first; look again
            continue
    raise RuntimeError("could not claim an idempotency key")


def finish(db: Database, record_id: int, fingerprint: str, status: int, headers: list[list[str]], body: bytes) -> None:
    with db.write() as session:
        record = session.get(IdempotencyRecord, record_id)
        if record is not None:
            record.state, record.fingerprint, record.status_code = DONE, fingerprint, status
            record.headers, record.body = headers, body


def release(db: Database, record_id: int) -> None:
    with db.write() as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


class Fingerprint:
    """What makes two requests "the same": the path, every form field and the file's name and bytes,
    whatever the multipart boundary or the order of the fields. Fed the raw body as it streams."""

    def __init__(self, path: str, content_type: str | None) -> None:
        self._path = path
        self._raw = hashlib.sha256()
        self._parts: list[tuple[str, str]] = []
        self._parser: MultipartParser | None = None
        self._part: Any = None
        self._name = b""
        self._field = b""
        self._headers: dict[bytes, bytes] = {}
        kind, options = parse_options_header(content_type or "")
        if kind == b"multipart/form-data" and options.get(b"boundary"):
            callbacks = {
                "on_part_begin": self._begin,
                "on_header_field": self._header_field,
                "on_header_value": self._header_value,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": self._end,
            }
            self._parser = MultipartParser(options[b"boundary"], callbacks)  # type: ignore[arg-type]

    def _begin(self) -> None:
        self._headers, self._field, self._part = {}, b"", hashlib.sha256()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field = data[start:end].lower()

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._headers[self._field] = self._headers.get(self._field, b"") + data[start:end]

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"") + b"\0" + options.get(b"filename", b"\0")

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._part.update(data[start:end])

    def _end(self) -> None:
        self._parts.append((self._name.hex(), self._part.hexdigest()))

    def feed(self, chunk: bytes) -> None:
        self._raw.update(chunk)
        if self._parser is not None:
            try:
                self._parser.write(chunk)
            except MultipartParseError:
                self._parser = None  # the route refuses such a body itself; the raw hash still tells them apart

    def hexdigest(self) -> str:
        digest = hashlib.sha256(self._path.encode() + b"\n")
        if self._parser is not None:
            for name, value in sorted(self._parts):
                digest.update(f"{name}={value}\n".encode())
        else:
            digest.update(self._raw.digest())
        return digest.hexdigest()
