"""The dashboard: server-rendered pages (Jinja2) in the API's own app, for people rather than programs.

Sign up and in, keys, usage and credits, jobs and the webhook secret, team members. Sessions are
signed cookies (HttpOnly, SameSite=Lax, Secure behind https, path /dashboard) naming a row in
`dashboard_sessions`; every form carries a CSRF token; every page a strict Content-Security-Policy.

Importing this package registers the dashboard's tables on `konvrt.db.Base` and nothing heavier;
`install` brings in the web layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from konvrt.dashboard import models as models

if TYPE_CHECKING:
    from fastapi import FastAPI

    from konvrt.services import Services


def install(app: FastAPI, services: Services) -> None:
    """Mount the pages, their static files, the session cookie and the security headers on `app`."""
    from konvrt.dashboard.mount import install as mount

    mount(app, services)
