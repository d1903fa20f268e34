"""Status polling is the API's hottest path. On the embedded default the status lane answers the plain
poll straight from ASGI, and everything else goes on to the full app.

The lane must be invisible: the same body and headers as the full app gives, every rule (revocation,
plans, limits, the address block) applied on the very next poll, nothing counted twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
import uvicorn
from sqlalchemy import text, update
from starlette.types import ASGIApp, Receive, Scope, Send

from konvrt import accounts
from konvrt.api.status_lane import StatusLane
from konvrt.app import create_app
from konvrt.db import Account, Job, utcnow
from konvrt.services import Services
from tests.conftest import LiveServer, SettingsFactory, free_port, new_key, pending_job


class _Counting:
    """The full app behind the lane, counting the requests the lane hands on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await self.app(scope, receive, send)


@pytest.fixture
def live_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_server_factory(workers=0)  # no worker may take up the jobs these tests write and edit


_Pair = tuple[Services, httpx.Client, httpx.Client, _Counting]


@pytest.fixture
def lane_and_full(
    settings_factory: SettingsFactory,
) -> Iterator[tuple[Services, httpx.Client, httpx.Client, _Counting]]:
    """Services, a client of the app (lane in front), a client of the full app alone, and the hand-on counter.

    Both are served over real HTTP by uvicorn, on the same services."""
    app = create_app(settings_factory(ratelimit_pro=1000), workers=0)
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def serve(asgi: ASGIApp) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            assert thread.is_alive(), "the test server did not start"
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    through_lane = httpx.Client(base_url=serve(app))
    through_lane.get("/healthz")  # builds the stack
    lane = app.middleware_stack
    assert isinstance(lane, StatusLane) and lane.app is not None
    counting = _Counting(lane.app)
    lane.app = counting

    async def full_only(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the first server runs the app's lifespan
            return
        scope["app"] = app
        await counting.app(scope, receive, send)

    full = httpx.Client(base_url=serve(full_only))
    yield app.state.services, through_lane, full, counting
    through_lane.close()
    full.close()
    for server, thread in servers:
        server.should_exit = True
        thread.join(30)


def test_the_lane_answers_exactly_what_the_full_app_answers(
    lane_and_full: _Pair,
) -> None:
    services, through_lane, full, counting = lane_and_full
    key = new_key(services)
    now = utcnow().replace(microsecond=0)
    job_ids = [
        pending_job(services.db, key),
        pending_job(services.db, key, status="processing", progress=42, started_at=now, filename='vidéo 日本 "x".mp4'),
        pending_job(
            services.db,
            key,
            status="completed",
            progress=100,
            started_at=now - timedelta(seconds=30),
            completed_at=now,
            expires_at=now + timedelta(hours=24),
            output_key="out",
            output_size=45_678,
            note="The result was larger than the input, so you got the input back.",
        ),
        pending_job(services.db, key, status="failed", error="The file has no video stream.", completed_at=now),
        # Numbers where pydantic's JSON (FastAPI's) and json.dumps disagree: 1e-7 against 1e-07, NaN as null.
        pending_job(services.db, key, params={"codec": "h264", "tiny": 1e-7, "nan": float("nan"), "big": 10**30}),
    ]
    auth = {"Authorization": f"Bearer {key}"}
    through_lane.get(f"/api/v1/status/{job_ids[0]}", headers=auth)  # a key's first use is written by the full app
    for job_id in job_ids:
        handed_on = counting.calls
        answered = through_lane.get(f"/api/v1/status/{job_id}", headers=auth)
        assert counting.calls == handed_on, "the lane should have answered a plain poll itself"
        expected = full.get(f"/api/v1/status/{job_id}", headers=auth)
        assert answered.status_code == expected.status_code == 200
        assert answered.content == expected.content
        assert set(answered.headers) == set(expected.headers)
        for name in ("content-type", "content-length", "x-ratelimit-limit", "x-ratelimit-reset"):
            assert answered.headers[name] == expected.headers[name], name
        remaining = int(answered.headers["x-ratelimit-remaining"])
        assert int(expected.headers["x-ratelimit-remaining"]) == remaining - 1  # each counted once
        assert answered.headers["x-request-id"].startswith("req_")
    twice = [("authorization", f"Bearer {key}"), ("x-request-id", "client-a"), ("x-request-id", "proxy-b")]
    for client in (through_lane, full):  # the first of two ids is echoed on both paths
        assert client.get(f"/api/v1/status/{job_ids[0]}", headers=twice).headers["x-request-id"] == "client-a"


def test_a_row_the_lane_cannot_read_gets_the_full_apps_answer(lane_and_full: _Pair) -> None:
    services, through_lane, full, counting = lane_and_full
    key = new_key(services)
    job_id = pending_job(services.db, key)
    auth = {"Authorization": f"Bearer {key}", "X-Request-Id": "trace-42"}
    assert through_lane.get(f"/api/v1/status/{job_id}", headers=auth).status_code == 200
    with services.db.write() as session:  # not something the API writes; a hand-edited or damaged row
        session.execute(text("UPDATE jobs SET created_at = 'garbage' WHERE id = :id"), {"id": job_id})
    handed_on = counting.calls
    answered = through_lane.get(f"/api/v1/status/{job_id}", headers=auth)
    assert counting.calls == handed_on + 1
    expected = full.get(f"/api/v1/status/{job_id}", headers=auth)
    assert answered.status_code == expected.status_code == 500
    assert (
        answered.json()
        == expected.json()
        == {
            "success": False,
            "error": "Something went wrong on our side.",
            "code": "internal",
        }
    )
    assert answered.headers["x-request-id"] == expected.headers["x-request-id"] == "trace-42"


def test_what_is_not_the_plain_case_goes_on_to_the_full_app(
    lane_and_full: _Pair,
) -> None:
    services, through_lane, _, counting = lane_and_full
    key, other = new_key(services), new_key(services)
    mine, theirs = pending_job(services.db, key), pending_job(services.db, other)
    hooked = pending_job(services.db, key, webhook_url="https://example.com/hook")
    auth = {"Authorization": f"Bearer {key}"}

    def handed_on(*args: Any, **kwargs: Any) -> Any:
        before = counting.calls
        response = through_lane.get(*args, **kwargs)
        assert counting.calls == before + 1, (args, kwargs, response.text)
        return response

    assert handed_on(f"/api/v1/status/{mine}", headers=auth).status_code == 200  # first use: last_used_at
    assert handed_on(f"/api/v1/status/{theirs}", headers=auth).json()["code"] == "job_not_found"
    assert handed_on(f"/api/v1/status/{mine}").json()["code"] == "missing_api_key"
    assert handed_on(f"/api/v1/status/{mine}", headers={"Authorization": "Basic abc"}).status_code == 401
    assert handed_on(f"/api/v1/status/{mine}X", headers=auth).status_code == 404
    assert handed_on(f"/api/v1/status/{mine}/", headers=auth).status_code in (307, 404)
    assert "webhook" in handed_on(f"/api/v1/status/{hooked}", headers=auth).json()
    twice = [("authorization", f"Bearer {key}"), ("authorization", f"Bearer {other}")]
    handed_on(f"/api/v1/status/{mine}", headers=twice)
    with services.db.write() as session:
        session.execute(update(Account).where(Account.email.like("u%")).values(plan="free"))
    assert handed_on(f"/api/v1/status/{mine}", headers=auth).json()["code"] == "plan_required"


def test_revocation_progress_and_key_use_count_on_the_very_next_poll(live_server: LiveServer) -> None:
    services = live_server.services
    key = live_server.account()
    job_id = pending_job(services.db, key)
    with live_server.client(key) as client:
        assert client.get(f"/api/v1/status/{job_id}").json()["progress"] == 0
        with services.db.write() as session:
            session.execute(update(Job).where(Job.id == job_id).values(status="processing", progress=57))
        polled = client.get(f"/api/v1/status/{job_id}").json()
        assert (polled["status"], polled["progress"]) == ("processing", 57)
        # A key last used over a minute ago goes through the full app, which writes its use again.
        with services.db.write() as session:
            session.execute(text("UPDATE api_keys SET last_used_at = :t"), {"t": utcnow() - timedelta(minutes=5)})
        assert client.get(f"/api/v1/status/{job_id}").status_code == 200
        with services.db.read() as session:
            caller = accounts.authenticate(session, f"Bearer {key}")
        assert caller.key_last_used_at is not None and utcnow() - caller.key_last_used_at < timedelta(seconds=30)
        with services.db.write() as session:
            assert accounts.revoke_key(session, key) == 1
        revoked = client.get(f"/api/v1/status/{job_id}")
        assert revoked.status_code == 401 and revoked.headers["WWW-Authenticate"] == "Bearer"


def test_limits_stay_exact_across_the_lane_and_the_full_app(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(workers=0, ratelimit_pro=5, ratelimit_window_seconds=30, ratelimit_per_address=2)
    key = server.account()
    job_id = pending_job(server.services.db, key)
    with server.client(key) as client:
        answers = [client.get(f"/api/v1/status/{job_id}") for _ in range(6)]
        assert [r.status_code for r in answers] == [200] * 5 + [429]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["4", "3", "2", "1", "0", "0"]
        assert answers[-1].json()["code"] == "rate_limited" and int(answers[-1].headers["Retry-After"]) >= 1

    fresh = server.account()
    job_id = pending_job(server.services.db, fresh)
    with server.client(fresh) as client:
        assert client.get(f"/api/v1/status/{job_id}").status_code == 200
        for guess in range(2):  # failed keys from this address use up its failed-authentication window
            assert client.get("/api/v1/usage", headers={"Authorization": f"Bearer kvrt_{guess}"}).status_code == 401
        blocked = client.get(f"/api/v1/status/{job_id}")
        assert blocked.status_code == 429, "a valid key from a blocked address is refused, lane or not"


def test_request_ids_are_echoed_when_sane_and_made_otherwise(live_server: LiveServer) -> None:
    key = live_server.account()
    job_id = pending_job(live_server.services.db, key)
    with live_server.client(key) as client:
        client.get(f"/api/v1/status/{job_id}")
        assert client.get(f"/api/v1/status/{job_id}", headers={"X-Request-Id": "poll-7"}).headers["X-Request-Id"] == (
            "poll-7"
        )
        made = client.get(f"/api/v1/status/{job_id}", headers={"X-Request-Id": "bad id with spaces"})
        assert made.headers["X-Request-Id"].startswith("req_")


def test_polls_leave_the_wal_free_to_checkpoint(live_server: LiveServer) -> None:
    """A statement left open would hold its read transaction, and the WAL could never be folded back."""
    services = live_server.services
    key = live_server.account()
    job_id = pending_job(services.db, key)
    with live_server.client(key) as client:
        for _ in range(3):
            assert client.get(f"/api/v1/status/{job_id}").status_code == 200
    with services.db.engine.connect() as conn:
        busy, _, _ = conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).one()
    assert busy == 0


def test_lane_answers_are_in_the_metrics(live_server: LiveServer) -> None:
    key = live_server.account()
    job_id = pending_job(live_server.services.db, key)
    with live_server.client(key) as client:
        for _ in range(4):
            client.get(f"/api/v1/status/{job_id}")
        metrics = client.get("/metrics").text
    line = next(
        line
        for line in metrics.splitlines()
        if line.startswith("konvrt_http_request_duration_seconds_count")
        and 'route="/api/v1/status/{job_id}"' in line
        and 'status="200"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) >= 4


def test_status_polls_make_no_thread_pool_hops_on_the_embedded_default(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = live_server.account()
    job_id = pending_job(live_server.services.db, key)
    hops: list[str] = []
    real_run_sync = anyio.to_thread.run_sync

    async def counting_run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", repr(func)))
        return await real_run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting_run_sync)
    with live_server.client(key) as client:
        assert client.get(f"/api/v1/status/{job_id}").status_code == 200  # records the key's first use
        hops.clear()
        for _ in range(3):
            res = client.get(f"/api/v1/status/{job_id}")
            assert res.status_code == 200 and res.json()["status"] == "pending"
    assert hops == []


@pytest.mark.redis
def test_reads_leave_the_loop_when_a_backend_is_across_the_network(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    assert live_server_factory(workers=0).services.reads_are_local
    shared_limits = live_server_factory(workers=0, ratelimit_url="redis://127.0.0.1:6379/0")
    assert not shared_limits.services.reads_are_local
    key = shared_limits.account()
    job_id = pending_job(shared_limits.services.db, key)
    with shared_limits.client(key) as client:  # no lane here: the full app answers every poll
        for _ in range(2):
            assert client.get(f"/api/v1/status/{job_id}").json()["job_id"] == job_id


def test_the_lane_reads_a_data_dir_whose_name_needs_escaping_in_a_uri(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = live_server_factory(workers=0, data_dir=tmp_path / "a dir %20 ?x=1 #frag é")
    key = server.account()
    job_id = pending_job(server.services.db, key)
    answered: list[bool] = []
    real_answer = StatusLane._answer

    async def recording(self: StatusLane, *args: Any) -> bool:
        answered.append(await real_answer(self, *args))
        return answered[-1]

    monkeypatch.setattr(StatusLane, "_answer", recording)
    with server.client(key) as client:
        for _ in range(2):
            assert client.get(f"/api/v1/status/{job_id}").json()["job_id"] == job_id
    assert answered == [False, True]  # the first records the key's use; the lane answers the next
