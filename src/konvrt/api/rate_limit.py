"""Rate limits on the wire: the checks `deps.current_account` makes, and the headers on every API response.

A request is counted once it is authenticated (per account, every key and endpoint together) or once
its authentication fails (per client address). Refused requests get 429 with `Retry-After` before any
body is read, so they cost no credits. `X-RateLimit-Limit`, `-Remaining` and `-Reset` (Unix time) go
on every `/api/` response, errors included.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from konvrt.accounts import Caller
from konvrt.errors import TooManyRequests
from konvrt.ratelimit import RateLimiter, Verdict

_STATE_KEY = "konvrt_rate_limit"


def limiter_of(app: FastAPI) -> RateLimiter:
    limiter: RateLimiter = app.state.rate_limiter
    return limiter


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _remember(request: Request, verdict: Verdict) -> Verdict:
    request.scope.setdefault("state", {})[_STATE_KEY] = verdict
    return verdict


def _refuse(verdict: Verdict, who: str) -> TooManyRequests:
    return TooManyRequests(
        f"Too many requests {who}: at most {verdict.limit} per window. Retry after {verdict.retry_after} s."
    )


def before_auth(request: Request) -> None:
    """Refuse a client address that keeps failing authentication, before its key is even looked up."""
    verdict = limiter_of(request.app).address_window(_address(request))
    if not verdict.allowed:
        raise _refuse(_remember(request, verdict), "with failed authentication from this address")


def auth_failed(request: Request) -> None:
    _remember(request, limiter_of(request.app).hit_address(_address(request)))


def count_account(request: Request, account: Caller) -> None:
    verdict = _remember(request, limiter_of(request.app).hit_account(account.id, account.plan))
    if not verdict.allowed:
        raise _refuse(verdict, "for this account")


class RateLimitHeaders:
    """Adds X-RateLimit-* (and Retry-After on a 429) to every /api/ response."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app, self.limiter = app, limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                verdict = scope.get("state", {}).get(_STATE_KEY)
                if verdict is None:  # no route authenticated it (404, 405): the address's standing
                    client = scope.get("client")
                    address = client[0] if client else "unknown"
                    verdict = await run_in_threadpool(self.limiter.address_window, address)
                headers = [*message.get("headers", []), *verdict.raw_headers()]
                if message["status"] == 429:
                    headers.append((b"retry-after", b"%d" % verdict.retry_after))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, limiter: RateLimiter) -> None:
    app.state.rate_limiter = limiter
    app.add_middleware(RateLimitHeaders, limiter=limiter)
