"""Shared fixtures: clean environment, settings, a live HTTP server on a real port, accounts, media, and
Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import update

from konvrt import accounts, jobs
from konvrt.app import create_app
from konvrt.config import Settings
from konvrt.db import Database, Job
from konvrt.services import Services

CHROMIUM = Path("/usr/bin/chromium")
# Keep the browser off the network: no update checks, no sync, no QUIC probes, nothing but our server.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def _find_testdata() -> Path:
    candidates = [
        os.environ.get("KONVRT_TESTDATA", ""),
        Path(__file__).parents[2] / "shared" / "testdata",
        "/work/shared/testdata",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "real").is_dir():
            return Path(candidate)
    raise RuntimeError("Test media not found: set KONVRT_TESTDATA to the shared testdata folder.")


TESTDATA = _find_testdata()
REAL_VIDEO = TESTDATA / "real" / "video"
REAL_IMAGE = TESTDATA / "real" / "image"


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KONVRT_") and name != "KONVRT_TESTDATA":
            monkeypatch.delenv(name)


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def settings_factory(tmp_path: Path) -> SettingsFactory:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "workers": 1,
            "demo_account": False,
            "webhook_allow_private": True,
            "sweep_interval_seconds": 3600,
            # wait_for_job polls 5 times a second; tests/api/test_rate_limit.py sets its own limits.
            "ratelimit_pro": 100_000,
            "ratelimit_team": 100_000,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@dataclass
class LiveServer:
    url: str
    services: Services

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def account(self, email: str | None = None, plan: str = "pro", credits: int | None = None) -> str:
        """A new account on `plan`, its balance set to `credits` if given; returns a fresh API key."""
        email = email or f"user{time.monotonic_ns()}@example.com"
        with self.services.db.write() as session:
            account = accounts.create_account(session, self.services.settings, email, plan)
            if credits is not None:
                account.balance = credits
            return accounts.create_key(session, account).key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server_factory(settings_factory: SettingsFactory) -> Iterator[Callable[..., LiveServer]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(settings: Settings | None = None, workers: int | None = None, **overrides: Any) -> LiveServer:
        settings = settings or settings_factory(**overrides)
        app = create_app(settings, workers=workers)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        servers.append((server, thread))
        return LiveServer(url=f"http://127.0.0.1:{port}", services=app.state.services)

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def live_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_server_factory()


def pending_job(db: Database, key: str, **fields: Any) -> str:
    """A pending job of the key's account, written straight to the database; `fields` set any columns."""
    with db.write() as session:
        account_id = accounts.authenticate(session, f"Bearer {key}").id
        job_id = jobs.new_job_id()
        jobs.create(
            session,
            job_id=job_id,
            account_id=account_id,
            price=3,
            params={"codec": "h265", "quality": 28, "preset": "fast"},
            filename=fields.pop("filename", "clip.mp4"),
            size=123_456,
            info={"duration": 1.0, "width": 64, "height": 64},
            webhook_url=fields.pop("webhook_url", None),
        )
        if fields:
            session.execute(update(Job).where(Job.id == job_id).values(**fields))
    return job_id


def new_key(services: Services, plan: str = "pro") -> str:
    """A new account on `plan` and its API key."""
    with services.db.write() as session:
        account = accounts.create_account(session, services.settings, f"u{jobs.new_job_id()}@example.com", plan)
        return accounts.create_key(session, account).key


def make_clip(
    path: Path,
    *,
    seconds: float = 2,
    size: str = "320x240",
    rate: int = 25,
    audio: bool = True,
    extra: list[str] | None = None,
) -> Path:
    """A small real video made by FFmpeg's lavfi test sources."""
    ffmpeg = Settings().ffmpeg_exe
    argv = [
        ffmpeg,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate={rate}:duration={seconds}",
    ]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]
    argv += extra or ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        argv += ["-c:a", "aac"]
    subprocess.run([*argv, str(path)], check=True)
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4")


def job_status(client: httpx.Client, job_id: str) -> dict[str, Any]:
    """GET /status as a polite client does it: a 429 is waited out for its Retry-After, then asked again."""
    while (res := client.get(f"/api/v1/status/{job_id}")).status_code == 429:
        time.sleep(float(res.headers["Retry-After"]))
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def wait_for_job(client: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = job_status(client, job_id)
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    context.set_default_timeout(20_000)
    yield context.new_page()
    context.close()
