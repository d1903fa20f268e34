"""X-Request-Id: one id per request, echoed when the client sent a sane one, on every response and log line.

`current_request_id()` reads it anywhere in the request's context (threads started by
`run_in_threadpool` included); every `logging.LogRecord` carries it as `record.request_id` ("-" outside
a request), so a formatter can print `%(request_id)s`. The middleware is the app's outermost layer
(`wrap_outermost`), so even a 500 or a 429 carries the id.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-Id"
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")
_request_id: ContextVar[str | None] = ContextVar("konvrt_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def new_request_id() -> str:
    # An id names a request in logs and guards nothing, so it needs no getrandom() syscall per request.
    return f"req_{random.getrandbits(96):024x}"


def accept_or_make(sent: str | None) -> str:
    """The client's id when it is short printable ASCII without spaces or quotes; else a new one."""
    if sent is not None and _SANE.fullmatch(sent):
        return sent
    return new_request_id()


class bound:  # lower case: it reads as a function, `with bound(request_id):`
    """Log lines written inside (uvicorn's access line included) carry `request_id`.

    A class, not @contextmanager: it runs on every request, and a generator costs twice as much."""

    __slots__ = ("_request_id", "_token")

    def __init__(self, request_id: str) -> None:
        self._request_id = request_id

    def __enter__(self) -> None:
        self._token = _request_id.set(self._request_id)

    def __exit__(self, *exc_info: object) -> None:
        _request_id.reset(self._token)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = next((v for k, v in scope.get("headers", []) if k == b"x-request-id"), None)
        request_id = accept_or_make(sent.decode("latin-1") if sent is not None else None)
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with bound(request_id):
            await self.app(scope, receive, send_with_id)


def wrap_outermost(app: FastAPI) -> None:
    """Put the request id outside Starlette's ServerErrorMiddleware, which answers 500s itself."""
    build = app.build_middleware_stack

    def build_with_request_id() -> ASGIApp:
        return RequestIdMiddleware(build())

    setattr(app, "build_middleware_stack", build_with_request_id)  # noqa: B010 (mypy: no method assignment)


_installed_factory: Callable[..., logging.LogRecord] | None = None


def install_log_records() -> None:
    """Make every log record carry `request_id` (idempotent; safe to call once per app)."""
    global _installed_factory
    current = logging.getLogRecordFactory()
    if current is _installed_factory:
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        record.request_id = _request_id.get() or "-"
        return record

    _installed_factory = factory
    logging.setLogRecordFactory(factory)
