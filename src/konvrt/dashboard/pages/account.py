"""The signed-in person's account: password, and the team's members (the owner invites and removes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from konvrt.api.deps import ServicesDep
from konvrt.dashboard import people
from konvrt.dashboard.browser_sessions import Viewer
from konvrt.dashboard.models import Role
from konvrt.dashboard.web import CsrfChecked, RowId, ViewerDep, flash, redirect, render
from konvrt.errors import KonvrtError
from konvrt.services import Services

router = APIRouter(include_in_schema=False)
PasswordForm = Annotated[str, Form(max_length=4096)]


def _context(services: Services, viewer: Viewer, **extra: Any) -> dict[str, Any]:
    with services.db.read() as session:
        members = people.members(session, viewer.account.id)
    return {"viewer": viewer, "nav": "account", "members": members, "owner": viewer.role == Role.OWNER} | extra


@router.get("/dashboard/account")
def account_page(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    return render(request, "account.html", _context(services, viewer))


@router.post("/dashboard/account/password", dependencies=[CsrfChecked])
def change_password(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    current_password: PasswordForm = "",
    new_password: PasswordForm = "",
    confirm_password: PasswordForm = "",
) -> Response:
    try:
        if new_password != confirm_password:
            raise KonvrtError("The new password and its confirmation differ.")
        with services.db.write() as session:
            people.change_password(
                session, viewer.user_id, current_password, new_password, keep_session=viewer.session_id
            )
    except KonvrtError as exc:
        context = _context(services, viewer, password_error=exc.message)
        return render(request, "account.html", context, status_code=400)
    flash(request, "Password changed. Every other browser signed in as you has been signed out.")
    return redirect("/dashboard/account")


@router.post("/dashboard/account/members", dependencies=[CsrfChecked])
def invite(
    request: Request, viewer: ViewerDep, services: ServicesDep, email: Annotated[str, Form(max_length=320)] = ""
) -> Response:
    try:
        if viewer.role != Role.OWNER:
            raise KonvrtError("Only the account's owner can invite members.")
        with services.db.write() as session:
            member, token = people.invite(session, viewer.account, email)
            invited = member.email
    except KonvrtError as exc:
        return render(request, "account.html", _context(services, viewer, invite_error=exc.message), status_code=400)
    # Shown once, in this response only; the token is in the link's #fragment, which is never sent to a server.
    context = _context(
        services,
        viewer,
        invite_link=people.link_url(services.settings, token, base=str(request.base_url)),
        invited=invited,
    )
    return render(request, "account.html", context, status_code=201)


@router.post("/dashboard/account/members/{user_id}/remove", dependencies=[CsrfChecked])
def remove(request: Request, user_id: RowId, viewer: ViewerDep, services: ServicesDep) -> Response:
    try:
        if viewer.role != Role.OWNER:
            raise KonvrtError("Only the account's owner can remove members.")
        with services.db.write() as session:
            removed = people.remove_member(session, viewer.account.id, user_id).email
    except KonvrtError as exc:
        return render(request, "account.html", _context(services, viewer, invite_error=exc.message), status_code=400)
    flash(request, f"Removed {removed}; their browsers are signed out.")
    return redirect("/dashboard/account")
