"""Dependencies for routes, as `Annotated` aliases: a signature reads as a sentence."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import update
from starlette.concurrency import run_in_threadpool

from konvrt import accounts
from konvrt.accounts import Caller
from konvrt.api import rate_limit
from konvrt.db import ApiKey, utcnow
from konvrt.errors import Forbidden, Unauthorized
from konvrt.services import Services

# Writing last_used_at on every status poll would make each read a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


async def get_services(request: Request) -> Services:
    # async: a plain attribute read must not cost a hop to the thread pool on every request.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_account(
    request: Request, services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> Caller:
    caller = await services.read(_authenticate, request, services, authorization)
    if caller.key_last_used_at is None or utcnow() - caller.key_last_used_at > LAST_USED_RESOLUTION:
        await run_in_threadpool(_mark_used, services, caller.key_id)
    return caller


def _authenticate(request: Request, services: Services, authorization: str | None) -> Caller:
    rate_limit.before_auth(request)
    try:
        with services.db.read() as session:
            caller = accounts.authenticate(session, authorization)
    except (Unauthorized, Forbidden):
        rate_limit.auth_failed(request)
        raise
    rate_limit.count_account(request, caller)
    return caller


def _mark_used(services: Services, key_id: int) -> None:
    with services.db.write() as session:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))


AccountDep = Annotated[Caller, Depends(current_account)]
