"""Sign up, sign in (password or one-time link), sign out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from konvrt.api.deps import ServicesDep
from konvrt.dashboard import browser_sessions, people, throttle
from konvrt.dashboard.web import CsrfChecked, ViewerDep, flash, redirect, render, sign_in
from konvrt.errors import KonvrtError
from konvrt.services import Services

router = APIRouter(include_in_schema=False)
EmailForm = Annotated[str, Form(max_length=320)]
PasswordForm = Annotated[str, Form(max_length=4096)]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _throttled(request: Request, services: Services, email: str | None, page: str, why: str) -> Response | None:
    """The page again with a 429 while this email (or, with None, this address) must wait; else None."""
    with services.db.read() as session:
        wait = throttle.wait_seconds(session, email, _address(request))
    if not wait:
        return None
    minutes = max(1, round(wait / 60))
    message = f"{why} Try again in about {minutes} minute{'s' if minutes != 1 else ''}."
    return render(request, page, {"error": message, "email": email or ""}, status_code=429)


@router.get("/")
def root() -> Response:
    return redirect("/dashboard/")


@router.get("/dashboard/")
@router.get("/dashboard")
def home(viewer: ViewerDep) -> Response:
    return redirect("/dashboard/usage")


@router.get("/dashboard/signin")
def signin_page(request: Request) -> Response:
    return render(request, "signin.html")


@router.post("/dashboard/signin", dependencies=[CsrfChecked])
def signin(request: Request, services: ServicesDep, email: EmailForm = "", password: PasswordForm = "") -> Response:
    email = email.strip().lower()
    if (refused := _throttled(request, services, email, "signin.html", "Too many failed sign-ins.")) is not None:
        return refused
    with services.db.write() as session:
        user = people.authenticate(session, email, password)
        throttle.record(session, email, _address(request), succeeded=user is not None)
        token = browser_sessions.start(session, user) if user is not None else None
    if token is None:
        error = "That email and password do not match an account."
        return render(request, "signin.html", {"error": error, "email": email}, status_code=400)
    sign_in(request, token)
    return redirect("/dashboard/usage")


@router.get("/dashboard/signup")
def signup_page(request: Request) -> Response:
    return render(request, "signup.html")


@router.post("/dashboard/signup", dependencies=[CsrfChecked])
def signup(request: Request, services: ServicesDep, email: EmailForm = "", password: PasswordForm = "") -> Response:
    # Sign-ups hash a password too: the same throttle, per address, guards the CPU.
    if (refused := _throttled(request, services, None, "signup.html", "Too many attempts.")) is not None:
        return refused
    try:
        with services.db.write() as session:
            throttle.record(session, "", _address(request), succeeded=False)
        with services.db.write() as session:
            user = people.sign_up(session, services.settings, email, password)
            token = browser_sessions.start(session, user)
    except KonvrtError as exc:
        return render(request, "signup.html", {"error": exc.message, "email": email}, status_code=400)
    sign_in(request, token)
    flash(request, "Welcome to Konvrt. Your account is on the free plan.")
    return redirect("/dashboard/usage")


@router.get("/dashboard/link")
def link_page(request: Request) -> Response:
    return render(request, "link.html")


@router.post("/dashboard/link", dependencies=[CsrfChecked])
def link(request: Request, services: ServicesDep, token: Annotated[str, Form(max_length=200)] = "") -> Response:
    try:
        with services.db.write() as session:
            user = people.redeem_link(session, token)
            has_password = user.password_hash is not None
            session_token = browser_sessions.start(session, user)
    except KonvrtError as exc:
        return render(request, "link.html", {"error": exc.message}, status_code=400)
    sign_in(request, session_token)
    if not has_password:
        flash(request, "You are signed in. Choose a password so you can sign in again later.")
        return redirect("/dashboard/account")
    return redirect("/dashboard/usage")


@router.post("/dashboard/signout", dependencies=[CsrfChecked])
def signout(request: Request, services: ServicesDep, viewer: ViewerDep) -> Response:
    with services.db.write() as session:
        browser_sessions.end(session, request.session.get("sid", ""))
    request.session.clear()
    flash(request, "You are signed out.")
    return redirect("/dashboard/signin")
