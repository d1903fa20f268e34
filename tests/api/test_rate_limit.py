"""Rate limits: a moving window per account (all keys, all endpoints), per address for failed auth."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from konvrt.db import Job
from konvrt.ratelimit import RateLimiter
from tests.conftest import LiveServer, SettingsFactory

LIMITS = {"ratelimit_pro": 5, "ratelimit_team": 8, "ratelimit_window_seconds": 2, "ratelimit_per_address": 3}


def _assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 429
    body = response.json()
    assert body["success"] is False and body["code"] == "rate_limited" and body["error"]
    assert 1 <= int(response.headers["Retry-After"]) <= LIMITS["ratelimit_window_seconds"]
    assert response.headers["X-RateLimit-Remaining"] == "0"


def test_each_account_gets_exactly_its_limit_across_keys_and_endpoints(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(**LIMITS)
    key = server.account(email="a@example.com")
    with server.services.db.write() as session:
        from konvrt import accounts

        second_key = accounts.create_key(session, accounts.get_account(session, "a@example.com")).key
    other = server.account()
    with server.client(key) as one, server.client(second_key) as two, server.client(other) as third:
        answers = [
            one.get("/api/v1/usage"),
            two.get("/api/v1/status/j_doesnotexist"),  # a 404 counts too
            one.get("/api/v1/download/j_doesnotexist"),
            two.get("/api/v1/usage"),
            one.get("/api/v1/usage"),
        ]
        assert [r.status_code for r in answers] == [200, 404, 404, 200, 200]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["4", "3", "2", "1", "0"]
        for r in answers:
            assert r.headers["X-RateLimit-Limit"] == "5"
            assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())
        _assert_refused(two.get("/api/v1/usage"))
        _assert_refused(one.get("/api/v1/status/j_doesnotexist"))
        assert third.get("/api/v1/usage").status_code == 200  # another account has its own window
        time.sleep(int(one.get("/api/v1/usage").headers["Retry-After"]) + 0.1)
        assert one.get("/api/v1/usage").status_code == 200


def test_refused_upload_costs_nothing_and_creates_no_job(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(**LIMITS)
    key = server.account(credits=100)
    with server.client(key) as client:
        for _ in range(5):
            assert client.get("/api/v1/usage").status_code == 200
        response = client.post("/api/v1/compress", files={"file": ("a.mp4", b"\0" * 50_000, "video/mp4")})
        _assert_refused(response)
    with server.services.db.read() as session:
        assert session.query(Job).count() == 0
    time.sleep(int(response.headers["Retry-After"]) + 0.1)
    with server.client(key) as client:
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 100


def test_team_plan_has_its_own_limit(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(**LIMITS)
    with server.client(server.account(plan="team")) as client:
        codes = [client.get("/api/v1/usage").status_code for _ in range(9)]
    assert codes == [200] * 8 + [429]


def test_failed_authentication_is_limited_per_address(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(**LIMITS)
    valid = server.account()
    with server.client() as anonymous:
        first = [anonymous.get("/api/v1/usage", headers={"Authorization": f"Bearer kvrt_{n}"}) for n in range(3)]
        assert [r.status_code for r in first] == [401, 401, 401]
        assert [r.headers["X-RateLimit-Remaining"] for r in first] == ["2", "1", "0"]
        assert first[0].headers["WWW-Authenticate"] == "Bearer"
        # Guesses now get 429 before any key is looked up, a valid key from the same address too:
        # otherwise the answer would still tell a right guess from a wrong one at full speed.
        _assert_refused(anonymous.get("/api/v1/usage", headers={"Authorization": "Bearer kvrt_guess"}))
        _assert_refused(anonymous.get("/api/v1/usage"))
        _assert_refused(anonymous.get("/api/v1/usage", headers={"Authorization": f"Bearer {valid}"}))


def test_every_api_response_carries_the_headers(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(**LIMITS)
    with server.client() as client:
        for response in (client.get("/api/v1/nope"), client.put("/api/v1/usage")):
            assert response.status_code in (404, 405)
            assert response.headers["X-RateLimit-Limit"] == "3"
            assert response.headers["content-type"] == "application/json"


def _storages() -> list[Any]:
    return ["memory://", pytest.param("redis://127.0.0.1:6379/0", marks=pytest.mark.redis)]


@pytest.mark.parametrize("url", _storages())
def test_racing_requests_get_exactly_the_limit(settings_factory: SettingsFactory, url: str) -> None:
    """200 threads at once on one account's window: exactly `limit` get through, not one more or less."""
    limiter = RateLimiter(settings_factory(ratelimit_url=url, ratelimit_pro=60, ratelimit_window_seconds=30))
    account = secrets.randbelow(10**12)  # Redis is shared: a window nobody else uses
    with ThreadPoolExecutor(32) as pool:
        verdicts = list(pool.map(lambda _: limiter.hit_account(account, "pro"), range(200)))
    assert sum(v.allowed for v in verdicts) == 60
    assert all(v.remaining == 0 for v in verdicts if not v.allowed)
    assert min(v.retry_after for v in verdicts) >= 1
