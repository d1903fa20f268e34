"""Dashboard fixtures: a cookie-keeping HTTP client, screenshots (the browser comes from tests/conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from konvrt import accounts
from tests.conftest import LiveServer

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"


def screenshot(page: Page, name: str) -> Path:
    """Saved under test-artifacts/ (kept out of git) for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class Dashboard:
    """A browser-like HTTP client: keeps the session cookie and posts forms with their CSRF token."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def csrf(self, path: str = "/dashboard/signin") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def post(self, path: str, form_page: str = "/dashboard/signin", **fields: Any) -> httpx.Response:
        return self.http.post(path, data={"csrf": self.csrf(form_page), **fields})

    def sign_up(self, email: str, password: str = PASSWORD) -> httpx.Response:
        res = self.post("/dashboard/signup", email=email, password=password)
        assert res.status_code == 303 and res.headers["location"] == "/dashboard/usage", res.text
        return res

    def sign_in(self, email: str, password: str = PASSWORD) -> httpx.Response:
        return self.post("/dashboard/signin", email=email, password=password)

    def create_key(self, name: str = "test key") -> str:
        res = self.post("/dashboard/keys", form_page="/dashboard/keys", name=name)
        assert res.status_code == 201, res.text
        keys = re.findall(r'value="(kvrt_[A-Za-z0-9]+)"', res.text)
        assert len(keys) == 1, "the new key is shown once, in full"
        return str(keys[0])


@pytest.fixture
def dashboard_factory(live_server: LiveServer) -> Iterator[Any]:
    made: list[Dashboard] = []

    def make() -> Dashboard:
        made.append(Dashboard(live_server))
        return made[-1]

    yield make
    for client in made:
        client.close()


def upgrade(server: LiveServer, email: str, plan: str = "pro") -> None:
    """What an administrator's `konvrt accounts set-plan EMAIL PLAN` does."""
    with server.services.db.write() as session:
        accounts.set_plan(session, server.services.settings, email, plan)
