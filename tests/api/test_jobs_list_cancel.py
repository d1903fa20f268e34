"""GET /api/v1/jobs (newest first, cursor pages, status filter) and DELETE /api/v1/jobs/:id (cancel)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, make_clip


def _submit(client: httpx.Client, clip: Path, **fields: str) -> str:
    with clip.open("rb") as f:
        response = client.post("/api/v1/compress", files={"file": ("clip.mp4", f, "video/mp4")}, data=fields)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def test_list_is_newest_first_paged_and_filtered(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)  # jobs stay pending
    key = server.account()
    with server.client(key) as client, server.client(server.account()) as stranger:
        submitted = [_submit(client, clip) for _ in range(5)]
        assert client.delete(f"/api/v1/jobs/{submitted[1]}").status_code == 200

        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/jobs", params=params).json()
            assert len(page["jobs"]) <= 2
            seen += [job["job_id"] for job in page["jobs"]]
            if not page["has_more"]:
                assert page["next_cursor"] is None
                break
            cursor = page["next_cursor"]
        assert seen == submitted[::-1]

        failed = client.get("/api/v1/jobs", params={"status": "failed"}).json()
        assert [(j["job_id"], j["error"]) for j in failed["jobs"]] == [(submitted[1], "canceled")]
        pending = client.get("/api/v1/jobs", params={"status": "pending"}).json()["jobs"]
        assert len(pending) == 4 and all(j["status"] == "pending" for j in pending)
        assert stranger.get("/api/v1/jobs").json() == {
            "success": True,
            "jobs": [],
            "has_more": False,
            "next_cursor": None,
        }

        for params, field in (
            ({"status": "done"}, "status"),
            ({"cursor": "nonsense!"}, "cursor"),
            ({"limit": 0}, "limit"),
            ({"limit": 101}, "limit"),
        ):
            bad = client.get("/api/v1/jobs", params=params)
            assert bad.status_code == 400 and bad.json()["field"] == field, bad.text


def test_cancel_pending_refunds_and_is_private(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)
    key = server.account(credits=50)
    with server.client(key) as client, server.client(server.account()) as stranger:
        job_id = _submit(client, clip)
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 49
        # Someone else's job looks exactly like no job at all.
        assert stranger.delete(f"/api/v1/jobs/{job_id}").json() == client.delete("/api/v1/jobs/j_nope").json() | {
            "error": f"No job {job_id}."
        }
        assert stranger.delete(f"/api/v1/jobs/{job_id}").status_code == 404

        canceled = client.delete(f"/api/v1/jobs/{job_id}")
        assert canceled.status_code == 200
        assert canceled.json()["status"] == "failed" and canceled.json()["error"] == "canceled"
        assert client.get(f"/api/v1/status/{job_id}").json()["error"] == "canceled"
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 50
        assert not any((server.services.settings.data_dir).rglob(f"*{job_id}*/input"))

        again = client.delete(f"/api/v1/jobs/{job_id}")
        assert again.status_code == 409 and again.json()["code"] == "job_finished"
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 50  # refunded once


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/hook", received
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _ffmpeg_running_for(job_id: str) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if job_id.encode() in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


def test_cancel_processing_stops_ffmpeg_and_sends_job_failed(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = receiver
    server = live_server_factory(workers=1)
    key = server.account(credits=100)
    long_clip = make_clip(tmp_path / "long.mp4", seconds=30, size="640x360", audio=False)
    with server.client(key) as client:
        job_id = _submit(client, long_clip, codec="av1", quality="30", webhook_url=url)
        deadline = time.monotonic() + 30
        while client.get(f"/api/v1/status/{job_id}").json()["status"] != "processing" or not _ffmpeg_running_for(
            job_id
        ):
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)

        canceled = client.delete(f"/api/v1/jobs/{job_id}")
        assert canceled.status_code == 200 and canceled.json()["error"] == "canceled"

        deadline = time.monotonic() + 10
        while _ffmpeg_running_for(job_id):
            assert time.monotonic() < deadline, "FFmpeg still runs after the cancel"
            time.sleep(0.1)
        while not received:
            assert time.monotonic() < deadline + 10, "no webhook"
            time.sleep(0.1)
        assert received[0]["event"] == "job.failed"
        assert received[0]["job_id"] == job_id and received[0]["error"] == "canceled"
        time.sleep(1.5)  # the worker noticed and let go: the row stays canceled, the balance refunded
        status = client.get(f"/api/v1/status/{job_id}").json()
        assert status["status"] == "failed" and status["error"] == "canceled" and "output" not in status
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 100
