"""Webhooks through the real server: submit with webhook_url, the `webhook` status object, redeliver, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from konvrt.webhooks import verify
from konvrt.webhooks.secret_store import current_secret
from tests.conftest import LiveServer, SettingsFactory, make_clip, wait_for_job
from tests.webhooks.conftest import Receiver


def _account_id(live: LiveServer, key: str) -> int:
    from konvrt import accounts

    with live.services.db.read() as session:
        return accounts.authenticate(session, f"Bearer {key}").id


def _submit(live: LiveServer, key: str, clip: Path, **fields: str) -> str:
    with live.client(key) as client, clip.open("rb") as f:
        res = client.post("/api/v1/compress", files={"file": ("clip.mp4", f, "video/mp4")}, data=fields)
    assert res.status_code == 202, res.text
    job_id: str = res.json()["job_id"]
    return job_id


def test_job_with_webhook_url_notifies_and_shows_delivery_state(
    live_server: LiveServer, receiver: Receiver, tmp_path: Path
) -> None:
    key = live_server.account()
    clip = make_clip(tmp_path / "clip.mp4", seconds=1)
    job_id = _submit(live_server, key, clip, webhook_url=receiver.url + "/hook")
    with live_server.client(key) as client:
        status = client.get(f"/api/v1/status/{job_id}").json()
        assert status["webhook"]["url"] == receiver.url + "/hook"
        done = wait_for_job(client, job_id)
        deadline = time.monotonic() + 10
        while (webhook := client.get(f"/api/v1/status/{job_id}").json()["webhook"])["delivered_at"] is None:
            assert time.monotonic() < deadline, webhook
            time.sleep(0.05)
    assert webhook["attempts"] == 1 and webhook["last_status_code"] == 200 and webhook["state"] == "delivered"
    assert webhook["next_attempt_at"] is None and webhook["last_error"] is None
    with live_server.services.db.write() as session:
        secret = current_secret(session, _account_id(live_server, key))
    (request,) = receiver.requests
    event = verify(request.body, request.headers["konvrt-signature"], secret)
    assert event["event"] == "job.completed" and event["job_id"] == job_id
    assert event["output"] == {
        "download_url": done["output"]["download_url"],
        "size_bytes": done["output"]["size_bytes"],
        "expires_at": done["output"]["expires_at"],
    }

    with live_server.client(key) as client:
        res = client.post(f"/api/v1/jobs/{job_id}/webhook/redeliver")
    assert res.status_code == 202, res.text
    assert res.json()["success"] is True and res.json()["webhook"]["state"] == "pending"
    deadline = time.monotonic() + 10
    while len(receiver.requests) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert receiver.requests[1].headers["konvrt-delivery-attempt"] == "2"
    assert receiver.requests[1].headers["konvrt-event-id"] == request.headers["konvrt-event-id"]


def test_status_has_no_webhook_object_without_webhook_url(live_server: LiveServer, tmp_path: Path) -> None:
    key = live_server.account()
    job_id = _submit(live_server, key, make_clip(tmp_path / "clip.mp4", seconds=1))
    with live_server.client(key) as client:
        assert "webhook" not in client.get(f"/api/v1/status/{job_id}").json()
        res = client.post(f"/api/v1/jobs/{job_id}/webhook/redeliver")
    assert res.status_code == 409 and res.json()["code"] == "no_webhook"


def test_redeliver_refuses_unfinished_and_foreign_jobs(live_server_factory: object, tmp_path: Path) -> None:
    live = live_server_factory(workers=0)  # type: ignore[operator]
    key, other = live.account(), live.account()
    job_id = _submit(live, key, make_clip(tmp_path / "clip.mp4", seconds=1), webhook_url="http://127.0.0.1:9/h")
    with live.client(key) as client:
        res = client.post(f"/api/v1/jobs/{job_id}/webhook/redeliver")
        assert res.status_code == 409 and res.json()["code"] == "job_not_ready"
        assert client.post("/api/v1/jobs/j_nope/webhook/redeliver").status_code == 404
    with live.client(other) as client:
        assert client.post(f"/api/v1/jobs/{job_id}/webhook/redeliver").status_code == 404


def test_submit_refuses_private_webhook_url_with_the_setting_off(live_server_factory: object, tmp_path: Path) -> None:
    live = live_server_factory(workers=0, webhook_allow_private=False)  # type: ignore[operator]
    key = live.account()
    clip = make_clip(tmp_path / "clip.mp4", seconds=1)
    for url in ("http://127.0.0.1:8080/", "http://169.254.169.254/latest/meta-data/", "http://[::ffff:10.0.0.1]/"):
        with live.client(key) as client, clip.open("rb") as f:
            res = client.post(
                "/api/v1/compress", files={"file": ("clip.mp4", f, "video/mp4")}, data={"webhook_url": url}
            )
        assert res.status_code == 400, res.text
        assert res.json()["field"] == "webhook_url"
    with live.client(key) as client:
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 500, "nothing charged"


def _konvrt(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KONVRT_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "konvrt", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_prints_and_rotates_the_secret(tmp_path: Path, settings_factory: SettingsFactory) -> None:
    data = tmp_path / "data"
    assert _konvrt(data, "accounts", "create", "hooks@example.com", "--plan", "pro").returncode == 0
    first = _konvrt(data, "webhooks", "secret", "hooks@example.com")
    assert first.returncode == 0, first.stderr
    secret = first.stdout.strip()
    assert secret.startswith("whsec_")
    assert _konvrt(data, "webhooks", "secret", "hooks@example.com").stdout.strip() == secret, "stable"
    rotated = _konvrt(data, "webhooks", "secret", "hooks@example.com", "--rotate")
    assert rotated.returncode == 0 and "24 h" in rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith("whsec_") and new != secret
    assert _konvrt(data, "webhooks", "secret", "hooks@example.com").stdout.strip() == new
    missing = _konvrt(data, "webhooks", "secret", "nobody@example.com")
    assert missing.returncode == 1 and "No account" in missing.stderr
