"""The admin command line's side of the dashboard, run as real processes on the server's data dir:
passwords and one-time links for new accounts, team invitations, credit-pack requests and approvals."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable

from tests.conftest import LiveServer
from tests.dashboard.conftest import PASSWORD, Dashboard, upgrade


def konvrt(server: LiveServer, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KONVRT_DATA_DIR": str(server.services.settings.data_dir), "KONVRT_DEMO_ACCOUNT": "false"}
    return subprocess.run(
        [sys.executable, "-m", "konvrt", *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def link_token(output: str) -> str:
    found = re.search(r"https?://\S+/dashboard/link#(\S+)", output)
    assert found, output
    return found.group(1)


def test_account_created_with_a_password_signs_in(
    live_server: LiveServer, dashboard_factory: Callable[[], Dashboard]
) -> None:
    made = konvrt(live_server, "accounts", "create", "ops@example.com", "--plan", "pro", "--password", stdin=PASSWORD)
    assert made.returncode == 0, made.stderr
    assert "sign in at" in made.stdout and PASSWORD not in made.stdout
    client = dashboard_factory()
    assert client.sign_in("ops@example.com").status_code == 303
    assert ">500<" in client.get("/dashboard/usage").text

    short = konvrt(live_server, "accounts", "create", "weak@example.com", "--password", stdin="short")
    assert short.returncode == 1 and "at least 10 characters" in short.stderr


def test_one_time_link_works_once_then_a_password_is_chosen(
    live_server: LiveServer, dashboard_factory: Callable[[], Dashboard]
) -> None:
    made = konvrt(live_server, "accounts", "create", "linked@example.com", "--plan", "team")
    assert made.returncode == 0, made.stderr
    token = link_token(made.stdout)
    client = dashboard_factory()
    used = client.post("/dashboard/link", form_page="/dashboard/link", token=token)
    assert used.status_code == 303 and used.headers["location"] == "/dashboard/account"
    chosen = client.post(
        "/dashboard/account/password",
        form_page="/dashboard/account",
        new_password=PASSWORD,
        confirm_password=PASSWORD,
    )
    assert chosen.status_code == 303
    again = dashboard_factory().post("/dashboard/link", form_page="/dashboard/link", token=token)
    assert again.status_code == 400 and "used already or has expired" in again.text
    assert dashboard_factory().sign_in("linked@example.com").status_code == 303

    relinked = konvrt(live_server, "accounts", "sign-in-link", "linked@example.com")
    assert relinked.returncode == 0 and link_token(relinked.stdout) != token


def test_team_members_share_the_accounts_keys_and_credits(
    live_server: LiveServer, dashboard_factory: Callable[[], Dashboard]
) -> None:
    owner = dashboard_factory()
    owner.sign_up("lead@example.com")
    refused = owner.post("/dashboard/account/members", form_page="/dashboard/account", email="early@example.com")
    assert refused.status_code == 400 and "team plan" in refused.text
    upgrade(live_server, "lead@example.com", "team")
    owner_key = owner.create_key("shared deploy key")

    invited = konvrt(live_server, "accounts", "invite", "lead@example.com", "dev@example.com")
    assert invited.returncode == 0, invited.stderr
    member = dashboard_factory()
    assert member.post("/dashboard/link", form_page="/dashboard/link", token=link_token(invited.stdout)).is_redirect
    keys_page = member.get("/dashboard/keys").text
    assert "shared deploy key" in keys_page and owner_key[:12] in keys_page
    assert ">2,000<" in member.get("/dashboard/usage").text
    member_key = member.create_key("member key")
    with live_server.client(member_key) as api:
        assert api.get("/api/v1/usage").json()["plan"] == "team"
    not_owner = member.post("/dashboard/account/members", form_page="/dashboard/account", email="x@example.com")
    assert not_owner.status_code == 400 and "Only the account&#39;s owner" in not_owner.text

    page = owner.get("/dashboard/account").text
    member_id = re.search(r"/dashboard/account/members/(\d+)/remove", page)
    assert member_id and "dev@example.com" in page
    removed = owner.post(f"/dashboard/account/members/{member_id.group(1)}/remove", form_page="/dashboard/account")
    assert removed.status_code == 303
    assert member.get("/dashboard/keys").status_code == 303, "a removed member's browser is signed out"


def test_credit_pack_requests_wait_for_the_administrator(
    live_server: LiveServer, dashboard_factory: Callable[[], Dashboard]
) -> None:
    client = dashboard_factory()
    client.sign_up("buyer@example.com")
    upgrade(live_server, "buyer@example.com")
    asked = client.post("/dashboard/credits", form_page="/dashboard/credits", credits="2000")
    assert asked.status_code == 303
    assert ">500<" in client.get("/dashboard/usage").text, "nothing is granted before approval"
    odd = client.post("/dashboard/credits", form_page="/dashboard/credits", credits="999999")
    assert odd.status_code == 400 and "Choose one of the packs" in odd.text

    listed = konvrt(live_server, "credits", "requests")
    assert listed.returncode == 0 and "buyer@example.com" in listed.stdout and "2000" in listed.stdout
    request_id = re.search(r"^\s*(\d+)\s+buyer@example.com", listed.stdout, re.M)
    assert request_id
    approved = konvrt(live_server, "credits", "approve", request_id.group(1))
    assert approved.returncode == 0 and "balance 2500" in approved.stdout, approved.stdout + approved.stderr
    twice = konvrt(live_server, "credits", "approve", request_id.group(1))
    assert twice.returncode == 1 and "already approved" in twice.stderr

    usage = client.get("/dashboard/usage").text
    assert ">2,500<" in usage and "Credit pack" in usage
    assert "approved" in client.get("/dashboard/credits").text
    with live_server.client(client.create_key()) as api:
        assert api.get("/api/v1/usage").json()["credits"] == {"balance": 2500, "total_purchased": 2500}


def test_webhook_secret_rotates_from_the_jobs_page(
    live_server: LiveServer, dashboard_factory: Callable[[], Dashboard]
) -> None:
    client = dashboard_factory()
    client.sign_up("hooks@example.com")
    upgrade(live_server, "hooks@example.com")
    shown = re.compile(r'id="webhook-secret"|value="(whsec_[^"]+)"')
    before = [m for m in shown.findall(client.get("/dashboard/jobs").text) if m]
    cli = konvrt(live_server, "webhooks", "secret", "hooks@example.com")
    assert before and cli.stdout.strip() == before[0], "the page and the CLI show the same secret"
    rotated = client.post("/dashboard/webhook-secret/rotate", form_page="/dashboard/jobs")
    assert rotated.status_code == 303 and rotated.headers["location"] == "/dashboard/jobs#webhooks"
    page = client.get("/dashboard/jobs").text
    after = [m for m in shown.findall(page) if m]
    assert after and after[0] != before[0] and "keeps signing alongside it for 24 h" in page
    assert konvrt(live_server, "webhooks", "secret", "hooks@example.com").stdout.strip() == after[0]
