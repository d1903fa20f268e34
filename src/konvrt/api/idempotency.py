"""`Idempotency-Key` on the wire. A route opts in with one parameter: `_: IdempotencyDep`.

With the header, the first request claims (account, key) and runs; its 2xx answer is stored and
replayed, with `Idempotent-Replayed: true`, to every retry that sends the same request (same
fields, same file, whatever the boundary) within `KONVRT_IDEMPOTENCY_TTL_SECONDS`: the same job id,
no second charge, no second upload stored. A retry that arrives while the first is still running
waits for it (up to `KONVRT_IDEMPOTENCY_WAIT_SECONDS`, then 409); a retry with different parameters
gets 422. A first request that fails keeps nothing, so its retry runs afresh.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from datetime import timedelta
from typing import Annotated

import anyio
from fastapi import Depends, FastAPI, Header, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konvrt import idempotency
from konvrt.api.deps import AccountDep, ServicesDep
from konvrt.errors import Conflict, InvalidField, KonvrtError

log = logging.getLogger("konvrt.api")

HEADER = "Idempotency-Key"
_SANE_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_FINGERPRINT, _CLAIM = "konvrt_idempotency_fingerprint", "konvrt_idempotency_claim"
# Headers that belong to one exchange, not to the answer: never replayed.
_NOT_REPLAYED = {b"date", b"server", b"content-length", b"x-request-id", b"retry-after"}
_POLL_SECONDS = 0.05


class IdempotencyMismatch(KonvrtError):
    status = 422
    code = "idempotency_key_reused"


class _Replay(Exception):
    def __init__(self, existing: idempotency.Existing) -> None:
        self.existing = existing


async def idempotent(
    request: Request,
    account: AccountDep,
    services: ServicesDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Any unique string up to 255 printable ASCII characters (a UUID): retries with the same "
            "key and the same request get the first answer again for 24 h.",
        ),
    ] = None,
) -> None:
    if idempotency_key is None:
        return
    if len(request.headers.getlist(HEADER)) > 1:
        raise InvalidField(HEADER, f"Send the {HEADER} header once; this request has several.")
    if not _SANE_KEY.fullmatch(idempotency_key):
        raise InvalidField(
            HEADER, f"The {HEADER} header must be 1 to 255 visible ASCII characters, without spaces (a UUID)."
        )
    settings = services.settings
    ttl = timedelta(seconds=settings.idempotency_ttl_seconds)
    deadline = time.monotonic() + settings.idempotency_wait_seconds
    state = request.scope.setdefault("state", {})
    while True:
        outcome = await run_in_threadpool(idempotency.claim, services.db, account.id, idempotency_key, ttl)
        if isinstance(outcome, idempotency.Claimed):
            state[_CLAIM] = (services.db, outcome.record_id)
            return
        if outcome.state == idempotency.DONE:
            async for _ in request.stream():  # read (never stored) so the fingerprint covers the file
                pass
            if state[_FINGERPRINT].hexdigest() != outcome.fingerprint:
                raise IdempotencyMismatch(
                    f"This {HEADER} was already used for a different request; use a new key for a new request."
                )
            raise _Replay(outcome)
        if time.monotonic() >= deadline:
            raise Conflict(
                f"A request with this {HEADER} is still being processed; retry in a moment.",
                code="idempotency_in_flight",
            )
        await asyncio.sleep(_POLL_SECONDS)


IdempotencyDep = Annotated[None, Depends(idempotent)]


async def _replay(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _Replay)
    existing = exc.existing
    response = Response(existing.body, status_code=existing.status_code or 200)
    for name, value in existing.headers:
        response.headers.append(name, value)
    response.headers["Idempotent-Replayed"] = "true"
    return response


class IdempotencyMiddleware:
    """Fingerprints the body as the route reads it, and settles the claim with the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        if scope["type"] != "http" or scope["method"] != "POST" or b"idempotency-key" not in headers:
            await self.app(scope, receive, send)
            return
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        fingerprint = idempotency.Fingerprint(scope["path"], content_type)
        state = scope.setdefault("state", {})
        state[_FINGERPRINT] = fingerprint
        status = 0
        kept: list[list[str]] = []
        body = bytearray()

        async def fingerprinting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                fingerprint.feed(message.get("body", b""))
            return message

        async def capturing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                kept.extend(
                    [k.decode("latin-1"), v.decode("latin-1")]
                    for k, v in message.get("headers", [])
                    if k.lower() not in _NOT_REPLAYED and not k.lower().startswith(b"x-ratelimit-")
                )
            elif message["type"] == "http.response.body" and state.get(_CLAIM) and 200 <= status < 300:
                body.extend(message.get("body", b""))
            await send(message)

        settled = False
        try:
            await self.app(scope, fingerprinting_receive, capturing_send)
            claim = state.get(_CLAIM)
            if claim is not None and 200 <= status < 300:
                db, record_id = claim
                await run_in_threadpool(
                    idempotency.finish, db, record_id, fingerprint.hexdigest(), status, kept, bytes(body)
                )
                settled = True
        finally:
            claim = state.get(_CLAIM)
            if claim is not None and not settled:
                with anyio.CancelScope(shield=True):  # a dropped connection must still free the key
                    db, record_id = claim
                    await run_in_threadpool(idempotency.release, db, record_id)


def install(app: FastAPI) -> None:
    app.add_exception_handler(_Replay, _replay)
    app.add_middleware(IdempotencyMiddleware)
