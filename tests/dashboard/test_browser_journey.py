"""A person's whole path through the dashboard, in Debian's Chromium: sign up, sign in, make a key, use it
on the API with a real phone video, watch the job finish, download it, revoke the key."""

from __future__ import annotations

import re
from pathlib import Path

import av
import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.conftest import REAL_VIDEO, LiveServer
from tests.dashboard.conftest import PASSWORD, screenshot, upgrade

pytestmark = pytest.mark.browser


def nav(page: Page, name: str) -> None:
    page.get_by_role("navigation", name="Dashboard").get_by_role("link", name=name).click()


def test_sign_up_to_revoked_key(page: Page, live_server: LiveServer) -> None:
    base, email = live_server.url, "maria@example.com"

    page.goto(f"{base}/dashboard/signup")
    screenshot(page, "01-signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(f"{base}/dashboard/usage")
    expect(page.get_by_text("API access needs a Pro or Team plan.")).to_be_visible()
    screenshot(page, "02-usage-free-plan")

    upgrade(live_server, email, "pro")  # the administrator's `konvrt accounts set-plan maria@example.com pro`
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/dashboard/signin")
    screenshot(page, "03-signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#balance")).to_have_text("500")
    expect(page.get_by_text("API access needs a Pro or Team plan.")).to_have_count(0)

    nav(page, "API keys")
    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").input_value()
    assert re.fullmatch(r"kvrt_[A-Za-z0-9]{40}", key)
    assert key not in page.url
    screenshot(page, "04-keys-new-key")

    source = REAL_VIDEO / "fire2.mp4"
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as api:
        with source.open("rb") as f:
            res = api.post("/api/v1/compress", files={"file": (source.name, f, "video/mp4")}, data={"codec": "h264"})
        assert res.status_code == 202, res.text
        job_id = res.json()["job_id"]

    nav(page, "Jobs")
    row = page.locator(f"#job-{job_id}")
    expect(row).to_contain_text("fire2.mp4")
    # No reload: the page's own poll brings the finished row in.
    expect(row).to_have_attribute("data-status", "completed", timeout=120_000)
    expect(row.get_by_role("link", name="Download")).to_be_visible()
    screenshot(page, "05-jobs-completed")

    with page.expect_download() as download_info:
        row.get_by_role("link", name="Download").click()
    download = download_info.value
    assert download.suggested_filename == "fire2-compressed.mp4"
    saved = Path(download.path())
    with av.open(str(saved)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio
    expect(row).to_contain_text(f"{round(100 * (1 - saved.stat().st_size / source.stat().st_size))}%")

    nav(page, "API keys")
    page.get_by_role("link", name="Revoke…").click()
    screenshot(page, "06-key-revoke-confirm")
    page.get_by_role("button", name="Revoke key").click()
    expect(page.get_by_role("status")).to_contain_text("Revoked laptop")
    expect(page.get_by_text(re.compile(r"revoked (just now|\d+ minutes? ago)"))).to_be_visible()
    screenshot(page, "07-keys-revoked")
    res = httpx.get(f"{base}/api/v1/usage", headers={"Authorization": f"Bearer {key}"})
    assert res.status_code == 401 and res.json()["success"] is False

    nav(page, "Usage")
    expect(page.locator("#used-month")).to_have_text("1")
    expect(page.locator("table.ledger")).to_contain_text(job_id)
    screenshot(page, "08-usage-pro")


def test_credits_account_and_phone_layout(page: Page, live_server: LiveServer) -> None:
    base, email = live_server.url, "team-owner@example.com"
    page.goto(f"{base}/dashboard/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    upgrade(live_server, email, "team")

    nav(page, "Buy credits")
    page.get_by_role("button", name="Request 500 credits").click()
    expect(page.get_by_role("status")).to_contain_text("waiting for your administrator's approval")
    expect(page.locator("table")).to_contain_text("pending")
    screenshot(page, "09-credits-requested")

    nav(page, "Account")
    page.get_by_label("Invite by email").fill("colleague@example.com")
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#invite-link").input_value()
    assert link.startswith(f"{base}/dashboard/link#")
    screenshot(page, "10-account-invited")

    page.goto(f"{base}/dashboard/jobs")
    expect(page.get_by_text("No jobs yet.")).to_be_visible()
    page.get_by_role("button", name="Show").click()
    assert page.locator("#webhook-secret").input_value().startswith("whsec_")
    screenshot(page, "11-jobs-empty-webhook-secret")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/dashboard/usage")
    screenshot(page, "12-usage-phone")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the phone layout scrolls sideways ({width} px)"
