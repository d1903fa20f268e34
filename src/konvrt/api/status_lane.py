"""GET /api/v1/status/:id on the embedded default, answered straight from ASGI.

Clients poll status every few seconds, so it is the API's hottest call. Through FastAPI it costs about
0.9 ms of Python: the middleware stack, dependency solving, a key query and a job query through the
ORM. The lane answers the same poll with one SQLite query on a connection of its own and the same
rate-limit hit, in a tenth of that.

It answers only the plain success: one live key on an API plan, used within the last minute, asking
for a job of its own account that has no webhook to report, within the account's limit. Anything
else (every error, every 429, the once-a-minute `last_used_at` write, a webhook's delivery state)
passes untouched to the full app, which decides it as it always does, so each rule lives in one
place. A refused hit records nothing in the window, so a request the lane hands on is never counted
twice.

Only where reads are local (a SQLite file and in-memory counters) is it installed; on PostgreSQL or
Redis the full app serves every poll.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from pydantic import TypeAdapter
from sqlalchemy import Engine, bindparam, select
from starlette.types import ASGIApp, Receive, Scope, Send

from konvrt import accounts
from konvrt.api.deps import LAST_USED_RESOLUTION
from konvrt.api.jobs import StoredJob, status_body
from konvrt.api.request_id import accept_or_make, bound
from konvrt.db import Account, ApiKey, Job, utcnow
from konvrt.observability import HTTP_SECONDS
from konvrt.ratelimit import RateLimiter

ROUTE = "/api/v1/status/{job_id}"
# The full route returns dict[str, Any]; FastAPI writes it with pydantic's serializer for that type, whose
# output differs from json.dumps in places (1e-07 against 1e-7, NaN as null).
_ROUTE_ANSWER = TypeAdapter(dict[str, Any])
_PATH = re.compile(r"/api/v1/status/(j_[a-z0-9]{16})")

# What the lane answers is in the WHERE clause: a live key used within the resolution, and its account's
# job without a webhook. No row means "not the plain case": the full app decides.
_STATUS = (
    select(
        Account.id,
        Account.plan,
        *(getattr(Job, field.name) for field in fields(StoredJob)),  # in the order StoredJob takes them
    )
    .select_from(ApiKey)
    .join(Account, Account.id == ApiKey.account_id)
    .join(Job, Job.account_id == Account.id)
    .where(
        ApiKey.key_hash == bindparam("key_hash"),
        ApiKey.revoked_at.is_(None),
        ApiKey.last_used_at >= bindparam("used_since"),
        Job.id == bindparam("job_id"),
        Job.webhook_url.is_(None),
    )
)


class StatusLane:
    def __init__(self, engine: Engine, limiter: RateLimiter) -> None:
        self.app: ASGIApp | None = None  # the full app, which `install` puts behind the lane
        self.limiter = limiter
        self._path = Path(engine.url.database or "").resolve()
        compiled = _STATUS.compile(dialect=engine.dialect)
        self._sql, self._order = compiled.string, compiled.positiontup or []
        # SQLAlchemy's own converters both ways, so a value is written and read as through the ORM.
        dialect = engine.dialect
        self._bind_used_since = compiled.binds["used_since"].type.dialect_impl(dialect).bind_processor(dialect)
        self._convert = [
            (index, convert)
            for index, column in enumerate(_STATUS.selected_columns[2:])
            if (convert := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        ]
        # The body is a pure function of the job's row: a job polled while nothing about it changed is
        # rendered once. The row itself is read on every poll.
        self._render = lru_cache(maxsize=4096)(self._render_uncached)
        self._db: sqlite3.Connection | None = None
        self._timer = HTTP_SECONDS.labels("GET", ROUTE, "200")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and (match := _PATH.fullmatch(scope["path"])):
            started = time.perf_counter()
            if await self._answer(scope, send, match.group(1)):
                self._timer.observe(time.perf_counter() - started)
                return
        assert self.app is not None, "install() puts the app behind the lane"
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, job_id: str) -> bool:
        authorization, sent_id = None, None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return False
                authorization = value.decode("latin-1")
            elif name == b"x-request-id" and sent_id is None:  # the first one, as RequestIdMiddleware takes
                sent_id = value.decode("latin-1")
        if authorization is None:
            return False
        scheme, _, key = authorization.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key.startswith(accounts.KEY_PREFIX):
            return False
        client = scope.get("client")
        if not self.limiter.address_window(client[0] if client else "unknown").allowed:
            return False
        try:
            row = self._read(accounts.hash_key(key), job_id)
            if row is None or row[1] not in accounts.API_PLANS:
                return False
            body = self._render(row[2:])
        except Exception:
            # A row or a database the lane cannot read: the full app answers that poll the way it answers
            # any other, with its error body, request id and log line; nothing has been counted yet.
            return False
        verdict = self.limiter.hit_account(row[0], row[1])  # counted only once the lane can answer
        if not verdict.allowed:
            return False
        request_id = accept_or_make(sent_id)
        headers = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            *verdict.raw_headers(),
            (b"x-request-id", request_id.encode()),
        ]
        with bound(request_id):  # uvicorn writes its access line as the response starts
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        return True

    def _read(self, key_hash: str, job_id: str) -> tuple[Any, ...] | None:
        """The account's id and plan, then the job's columns as stored; None when the lane must not answer."""
        if self._db is None:
            # Autocommit: each query is a read transaction of its own, over once its row is read, so it sees
            # every commit before it and never keeps the WAL from being checkpointed.
            self._db = sqlite3.connect(
                f"{self._path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        used_since = utcnow() - LAST_USED_RESOLUTION
        params = {
            "key_hash": key_hash,
            "job_id": job_id,
            "used_since": self._bind_used_since(used_since) if self._bind_used_since else used_since,
        }
        rows = self._db.execute(self._sql, [params[name] for name in self._order]).fetchall()
        return tuple(rows[0]) if rows else None  # a key hash and a job id name at most one row

    def _render_uncached(self, stored: tuple[Any, ...]) -> bytes:
        """The status body, encoded as FastAPI encodes the route's answer."""
        job = list(stored)
        for index, convert in self._convert:
            job[index] = convert(job[index])
        return _ROUTE_ANSWER.dump_json(status_body(StoredJob(*job)))

    def close(self) -> None:
        """Close the lane's connection (it reopens on the next poll)."""
        if self._db is not None:
            self._db.close()
            self._db = None


def install(app: FastAPI, engine: Engine, limiter: RateLimiter) -> StatusLane:
    """Put the lane in front of the whole app, request id and error handling included."""
    lane = StatusLane(engine, limiter)
    build = app.build_middleware_stack

    def build_with_lane() -> ASGIApp:
        lane.app = build()
        return lane

    setattr(app, "build_middleware_stack", build_with_lane)  # noqa: B010 (mypy: no method assignment)
    return lane
