"""Dependencies for routes, as `Annotated` aliases: a signature reads as a sentence."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import update

from konvrt import accounts
from konvrt.api import rate_limit
from konvrt.db import Account, ApiKey, utcnow
from konvrt.errors import Forbidden, Unauthorized
from konvrt.services import Services

# Writing last_used_at on every status poll would make each read a write; once a minute is enough.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def current_account(
    request: Request, services: ServicesDep, authorization: Annotated[str | None, Header()] = None
) -> Account:
    rate_limit.before_auth(request)
    try:
        with services.db.read() as session:
            account, key = accounts.authenticate(session, authorization)
    except (Unauthorized, Forbidden):
        rate_limit.auth_failed(request)
        raise
    rate_limit.count_account(request, account)
    if key.last_used_at is None or utcnow() - key.last_used_at > _LAST_USED_RESOLUTION:
        with services.db.write() as session:
            session.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=utcnow()))
    return account


AccountDep = Annotated[Account, Depends(current_account)]
