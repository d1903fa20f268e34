"""Mounting the dashboard on the app: pages, static files, the session cookie and the security headers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from konvrt.dashboard import browser_sessions, web
from konvrt.dashboard.pages import account, auth, jobs, keys, usage
from konvrt.dashboard.security import SecurityHeaders
from konvrt.services import Services

COOKIE = "konvrt_session"


def install(app: FastAPI, services: Services) -> None:
    for module in (auth, keys, usage, jobs, account):
        app.include_router(module.router)
    app.mount("/dashboard/static", StaticFiles(directory=web.HERE / "static"), name="dashboard-static")
    app.add_exception_handler(web.SignInRequired, web.sign_in_required)
    app.add_exception_handler(web.CsrfRejected, web.csrf_rejected)
    app.add_exception_handler(RequestValidationError, web.validation_error)  # pages get pages, the API JSON
    app.add_middleware(
        SessionMiddleware,
        secret_key=browser_sessions.cookie_key(services.db),
        session_cookie=COOKIE,
        max_age=int(browser_sessions.LIFETIME.total_seconds()),
        path="/dashboard",  # the API never sees the cookie, and never acts on one
        same_site="lax",
        https_only=services.settings.public_url.startswith("https://"),
    )
    app.add_middleware(SecurityHeaders)
