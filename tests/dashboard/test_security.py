"""What the dashboard must never do: show one account's data to another, accept a forged form, let
passwords be guessed at speed, put a secret in a URL or a log, or be framed by another site."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from konvrt.db import Job
from tests.conftest import LiveServer, make_clip, wait_for_job
from tests.dashboard.conftest import PASSWORD, Dashboard, upgrade

PAGES = ["/dashboard/usage", "/dashboard/keys", "/dashboard/jobs", "/dashboard/credits", "/dashboard/account"]


def _job_for(live_server: LiveServer, key: str, folder: Path) -> str:
    clip = make_clip(folder / "private-holiday.mp4", seconds=1, size="160x120")
    with live_server.client(key) as api, clip.open("rb") as f:
        job_id = str(api.post("/api/v1/compress", files={"file": (clip.name, f)}).json()["job_id"])
        assert wait_for_job(api, job_id)["status"] == "completed"
    return job_id


def test_no_page_shows_another_accounts_data(
    live_server: LiveServer, dashboard_factory: Callable[[], Dashboard], tmp_path: Path
) -> None:
    alice, bob = dashboard_factory(), dashboard_factory()
    alice.sign_up("alice@example.com")
    upgrade(live_server, "alice@example.com")
    alice_key = alice.create_key("alice-laptop")
    job_id = _job_for(live_server, alice_key, tmp_path)
    assert job_id in alice.get("/dashboard/jobs").text

    bob.sign_up("bob@example.com")
    for path in PAGES:
        page = bob.get(path)
        assert page.status_code == 200
        for secret in (job_id, "private-holiday", "alice", alice_key[:12]):
            assert secret not in page.text, f"{path} shows {secret!r} to another account"
    assert bob.get(f"/dashboard/jobs/{job_id}/download").status_code == 404
    alice_key_id = re.search(r"/dashboard/keys/(\d+)/revoke", alice.get("/dashboard/keys").text)
    assert alice_key_id
    assert bob.get(f"/dashboard/keys/{alice_key_id.group(1)}/revoke").status_code == 404
    refused = bob.post(f"/dashboard/keys/{alice_key_id.group(1)}/revoke", form_page="/dashboard/keys")
    assert refused.status_code == 404
    with live_server.client(alice_key) as api:
        assert api.get("/api/v1/usage").status_code == 200, "bob could not revoke alice's key"
    assert alice.get(f"/dashboard/jobs/{job_id}/download").content[4:8] == b"ftyp"


def test_ids_no_row_can_have_are_a_404_page(dashboard_factory: Callable[[], Dashboard]) -> None:
    """Past a 64-bit integer the database cannot even compare the id: a page, never a 500."""
    client = dashboard_factory()
    client.sign_up("ids@example.com")
    huge = "9" * 23
    for page in (
        client.get(f"/dashboard/keys/{huge}/revoke"),
        client.post(f"/dashboard/keys/{huge}/revoke", form_page="/dashboard/keys"),
        client.post(f"/dashboard/account/members/{huge}/remove", form_page="/dashboard/account"),
        client.get("/dashboard/keys/0/revoke"),
    ):
        assert page.status_code == 404, page.text
        assert page.headers["content-type"].startswith("text/html") and "Not found" in page.text


def test_a_form_field_out_of_bounds_gets_a_page(dashboard_factory: Callable[[], Dashboard]) -> None:
    client = dashboard_factory()
    page = client.post("/dashboard/signup", email="a" * 400 + "@example.com", password="x" * 20)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "email" in page.text and "Check the form" in page.text


def test_every_page_forbids_framing_and_scripts_from_elsewhere(dashboard_factory: Callable[[], Dashboard]) -> None:
    client = dashboard_factory()
    signin = client.get("/dashboard/signin")
    cookie = signin.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "path=/dashboard" in cookie.lower()
    client.sign_up("headers@example.com")
    for path in ["/dashboard/signin", "/dashboard/signup", *PAGES]:
        res = client.get(path)
        csp = res.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "default-src 'none'" in csp
        assert res.headers["x-frame-options"] == "DENY"
        assert res.headers["cache-control"] == "no-store"
        assert "<script>" not in res.text and " style=" not in res.text, f"{path} has inline code the CSP blocks"


def test_a_form_without_this_browsers_token_is_refused(
    live_server: LiveServer, dashboard_factory: Callable[[], Dashboard]
) -> None:
    client = dashboard_factory()
    client.sign_up("csrf@example.com")
    forged = client.http.post("/dashboard/keys", data={"name": "from evil.example", "csrf": "guess"})
    assert forged.status_code == 403 and "Form expired" in forged.text
    missing = client.http.post("/dashboard/keys", data={"name": "no token"})
    assert missing.status_code == 403
    assert "from evil.example" not in client.get("/dashboard/keys").text
    other = dashboard_factory()
    other.get("/dashboard/signin")
    stolen = other.csrf()  # a token from another browser's session is no good either
    assert client.http.post("/dashboard/keys", data={"name": "x", "csrf": stolen}).status_code == 403


def test_password_guessing_is_throttled(live_server: LiveServer, dashboard_factory: Callable[[], Dashboard]) -> None:
    owner = dashboard_factory()
    owner.sign_up("target@example.com")
    attacker = dashboard_factory()
    answers = [attacker.sign_in("target@example.com", f"wrong password {n}").status_code for n in range(10)]
    assert answers == [400] * 10
    blocked = attacker.sign_in("target@example.com", PASSWORD)
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text, "even the right password waits"
    with live_server.services.db.read() as session:
        assert session.query(Job).count() == 0


def test_wrong_email_and_wrong_password_read_the_same(dashboard_factory: Callable[[], Dashboard]) -> None:
    client = dashboard_factory()
    client.sign_up("exists@example.com")
    fresh = dashboard_factory()
    unknown = fresh.sign_in("nobody@example.com", PASSWORD)
    wrong = fresh.sign_in("exists@example.com", "not the password")
    assert unknown.status_code == wrong.status_code == 400
    assert "That email and password do not match an account." in unknown.text
    assert "That email and password do not match an account." in wrong.text


def test_secrets_stay_out_of_urls_and_logs(
    live_server: LiveServer, dashboard_factory: Callable[[], Dashboard], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = dashboard_factory()
    client.sign_up("quiet@example.com")
    upgrade(live_server, "quiet@example.com")
    key = client.create_key("ci")
    jobs = client.get("/dashboard/jobs")
    secret = re.search(r'value="(whsec_[^"]+)"', jobs.text)
    assert secret
    client.post("/dashboard/signout", form_page="/dashboard/usage")
    client.sign_in("quiet@example.com")
    urls = [str(r.url) for r in client.http.get("/dashboard/keys").history] + [str(client.get("/").url)]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for value in (key, PASSWORD, secret.group(1)):
        assert all(value not in url for url in urls)
        assert value not in logged, "a secret reached a log line"
    cookie = client.http.cookies.get("konvrt_session") or ""
    assert key not in cookie and PASSWORD not in cookie


def test_changing_the_password_signs_out_other_browsers(dashboard_factory: Callable[[], Dashboard]) -> None:
    laptop, phone = dashboard_factory(), dashboard_factory()
    laptop.sign_up("mover@example.com")
    assert phone.sign_in("mover@example.com").status_code == 303
    assert phone.get("/dashboard/keys").status_code == 200
    changed = laptop.post(
        "/dashboard/account/password",
        form_page="/dashboard/account",
        current_password=PASSWORD,
        new_password="a brand new passphrase",
        confirm_password="a brand new passphrase",
    )
    assert changed.status_code == 303
    assert laptop.get("/dashboard/keys").status_code == 200, "the browser that changed it stays in"
    bounced = phone.get("/dashboard/keys")
    assert bounced.status_code == 303 and bounced.headers["location"] == "/dashboard/signin"
    assert phone.sign_in("mover@example.com").status_code == 400
    assert phone.sign_in("mover@example.com", "a brand new passphrase").status_code == 303


def test_sign_out_ends_the_session_on_the_server(dashboard_factory: Callable[[], Dashboard]) -> None:
    client = dashboard_factory()
    client.sign_up("leaver@example.com")
    copied = dict(client.http.cookies)  # what a thief who copied the cookie holds
    client.post("/dashboard/signout", form_page="/dashboard/usage")
    thief = dashboard_factory()
    thief.http.cookies.update(copied)
    assert thief.get("/dashboard/usage").status_code == 303, "a copied cookie dies with the sign-out"
