"""The dashboard's HTTP plumbing: templates and their filters, who is signed in, CSRF, flash messages."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from konvrt.api import errors as api_errors
from konvrt.api.deps import ServicesDep
from konvrt.dashboard import browser_sessions
from konvrt.dashboard.browser_sessions import Viewer
from konvrt.db import utcnow

HERE = Path(__file__).parent
SESSION_KEY = "sid"
CSRF_KEY = "csrf"
FLASH_KEY = "flash"

templates = Jinja2Templates(directory=HERE / "templates")


def _size(value: int | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("bytes", "KB", "MB", "GB"):
        if amount < 1000 or unit == "GB":
            return f"{value} bytes" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{value} bytes"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else "—"


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((utcnow() - value).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _until(value: datetime | None) -> str:
    if value is None:
        return "—"
    seconds = int((value - utcnow()).total_seconds())
    if seconds <= 0:
        return "expired"
    hours, minutes = divmod(seconds // 60, 60)
    return f"in {hours} h {minutes} min" if hours else f"in {minutes} min"


templates.env.filters.update(size=_size, when=_when, ago=_ago, until=_until, num="{:,}".format)


class SignInRequired(Exception):
    """Raised by the viewer dependency; answered with a redirect to the sign-in page."""


class CsrfRejected(Exception):
    """A form arrived without this browser's CSRF token."""


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_KEY] = token
    return token


def check_csrf(request: Request, csrf: Annotated[str, Form()] = "") -> None:
    """Every form posts the session's token back; a cross-site form cannot know it."""
    expected = request.session.get(CSRF_KEY)
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), csrf.encode()):
        raise CsrfRejected()


CsrfChecked = Depends(check_csrf)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    request.session[FLASH_KEY] = {"message": message, "kind": kind}


def current_viewer(request: Request, services: ServicesDep) -> Viewer:
    token = request.session.get(SESSION_KEY)
    viewer = None
    if isinstance(token, str):
        with services.db.read() as session:
            viewer = browser_sessions.resolve(session, token)
    if viewer is None:
        request.session.pop(SESSION_KEY, None)
        raise SignInRequired()
    browser_sessions.touch(services.db, viewer)
    return viewer


ViewerDep = Annotated[Viewer, Depends(current_viewer)]

# A row id in a page's path: anything past a 64-bit integer is no row at all (the database cannot compare it).
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]


def sign_in(request: Request, token: str) -> None:
    """Put a new session in the cookie; the old cookie's contents (and CSRF token) are dropped."""
    request.session.clear()
    request.session[SESSION_KEY] = token
    csrf_token(request)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    values: dict[str, Any] = {"csrf": csrf_token(request), "flash": request.session.pop(FLASH_KEY, None)}
    values.update(context or {})
    return templates.TemplateResponse(request, name, values, status_code=status_code)


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


async def sign_in_required(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/dashboard/jobs/table"):
        return Response(status_code=401)  # the jobs page's poll: let its script stop quietly
    return redirect("/dashboard/signin")


async def csrf_rejected(request: Request, exc: Exception) -> Response:
    message = "This form expired or came from another site. Go back, reload the page and try again."
    return render(request, "error.html", {"title": "Form expired", "message": message}, status_code=403)


async def validation_error(request: Request, exc: Exception) -> Response:
    """A page gets a page back: a path naming no row is 404, a form field out of bounds 400. The API's
    requests keep their JSON body."""
    if not request.url.path.startswith("/dashboard"):
        return await api_errors.validation_error(request, exc)
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    location = first.get("loc", ())
    if location and location[0] == "path":
        context = {"title": "Not found", "message": "There is nothing at this address in your account."}
        return render(request, "error.html", context, status_code=404)
    field = " ".join(str(part) for part in location[1:]) or "the form"
    message = f"The form could not be used: {field}: {first.get('msg', 'invalid')}. Go back and try again."
    return render(request, "error.html", {"title": "Check the form", "message": message}, status_code=400)
