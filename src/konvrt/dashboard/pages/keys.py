"""API keys: create (named, shown in full once), list, revoke after a confirmation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select

from konvrt import accounts
from konvrt.api.deps import ServicesDep
from konvrt.dashboard.browser_sessions import Viewer
from konvrt.dashboard.web import CsrfChecked, RowId, ViewerDep, flash, redirect, render
from konvrt.db import ApiKey, utcnow
from konvrt.services import Services

router = APIRouter(include_in_schema=False)


def _keys(services: Services, account_id: int) -> list[ApiKey]:
    with services.db.read() as session:
        query = (
            select(ApiKey)
            .where(ApiKey.account_id == account_id)
            .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.id.desc())
        )
        return list(session.scalars(query))


def _own_key(services: Services, account_id: int, key_id: int) -> ApiKey | None:
    with services.db.read() as session:
        key = session.get(ApiKey, key_id)
    return key if key is not None and key.account_id == account_id else None


def _no_key(request: Request, viewer: Viewer) -> Response:
    context = {
        "viewer": viewer,
        "title": "No such key",
        "message": "There is no live key with that id in this account.",
    }
    return render(request, "error.html", context, status_code=404)


@router.get("/dashboard/keys")
def keys_page(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    return render(request, "keys.html", {"viewer": viewer, "nav": "keys", "keys": _keys(services, viewer.account.id)})


@router.post("/dashboard/keys", dependencies=[CsrfChecked])
def create_key(
    request: Request, viewer: ViewerDep, services: ServicesDep, name: Annotated[str, Form(max_length=100)] = ""
) -> Response:
    name = " ".join(name.split()) or "Untitled key"
    with services.db.write() as session:
        new = accounts.create_key(session, viewer.account, name=name)
    # The full key is in this response's body only: never in a URL, a cookie or a log, and never again.
    context = {"viewer": viewer, "nav": "keys", "keys": _keys(services, viewer.account.id), "new_key": new.key}
    return render(request, "keys.html", context | {"new_key_name": name}, status_code=201)


@router.get("/dashboard/keys/{key_id}/revoke")
def confirm_revoke(request: Request, key_id: RowId, viewer: ViewerDep, services: ServicesDep) -> Response:
    key = _own_key(services, viewer.account.id, key_id)
    if key is None or key.revoked_at is not None:
        return _no_key(request, viewer)
    return render(request, "key_revoke.html", {"viewer": viewer, "nav": "keys", "key": key})


@router.post("/dashboard/keys/{key_id}/revoke", dependencies=[CsrfChecked])
def revoke(request: Request, key_id: RowId, viewer: ViewerDep, services: ServicesDep) -> Response:
    with services.db.write() as session:
        key = session.get(ApiKey, key_id)
        if key is None or key.account_id != viewer.account.id or key.revoked_at is not None:
            return _no_key(request, viewer)
        key.revoked_at = utcnow()
        label = f"{key.name} ({key.prefix}…{key.last4})"
    flash(request, f"Revoked {label}. The API refuses it from now on.")
    return redirect("/dashboard/keys")
