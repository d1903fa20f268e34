"""/healthz, /readyz, /metrics and JSON log lines, over live HTTP."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from konvrt.config import Settings
from konvrt.services import Services
from tests.conftest import LiveServer, free_port, new_key, pending_job, wait_for_job
from tests.scaled.procs import env_for, konvrt, stop, wait_http


def test_healthz_and_readyz(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(workers=0)
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": True, "queue": True, "storage": True}}
        shutil.rmtree(server.services.settings.data_dir / "files")  # the storage volume went away
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["code"] == "not_ready" and down.json()["checks"]["storage"] is False
        assert "storage" in down.json()["error"]


def test_readyz_names_an_unreachable_queue(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(workers=0, queue_url=f"redis://127.0.0.1:{free_port()}/0")
    with server.client() as client:
        down = client.get("/readyz")
        assert down.status_code == 503 and down.json()["checks"] == {"database": True, "queue": False, "storage": True}


def _metric(text: str, line_start: str) -> float:
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    assert values, f"no {line_start} in the metrics"
    return sum(values)


def test_metrics_report_jobs_uploads_encodes_and_latency(live_server: LiveServer, clip: Path) -> None:
    with live_server.client(live_server.account()) as client:
        before = client.get("/metrics").text
        job_id = client.post("/api/v1/compress", files={"file": clip.open("rb")}).json()["job_id"]
        assert wait_for_job(client, job_id)["status"] == "completed"
        res = client.get("/metrics")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/plain")
    text = res.text
    assert _metric(text, 'konvrt_jobs{state="completed"}') == 1
    assert _metric(text, 'konvrt_jobs{state="pending"}') == 0
    assert _metric(text, "konvrt_queue_depth") == 0
    assert 'konvrt_webhook_attempts_total{result="delivered"}' in text
    grew = _metric(text, 'konvrt_upload_bytes_total{kind="video"}') - (
        _metric(before, 'konvrt_upload_bytes_total{kind="video"}') if "konvrt_upload_bytes_total{" in before else 0
    )
    assert grew == clip.stat().st_size
    assert _metric(text, 'konvrt_encode_seconds_count{outcome="completed"}') >= 1
    assert 'route="/api/v1/status/{job_id}"' in text, "latency is labelled by route template, not by id"
    assert "j_" not in text.split("konvrt_http_request_duration_seconds", 1)[1]


def test_json_logs_carry_the_request_id(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    proc = konvrt("serve", "--port", str(port), "--no-workers", env=env_for(tmp_path / "d", log_format="json"), log=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        key, job_id = _key_and_job(tmp_path / "d")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}) as client:
            client.get("/api/v1/usage", headers={"X-Request-Id": "trace-123"})
            for poll in ("poll-1", "poll-2"):  # the key's use is recorded, so the status lane answers these
                assert client.get(f"/api/v1/status/{job_id}", headers={"X-Request-Id": poll}).status_code == 200
        time.sleep(0.3)
    finally:
        stop(proc)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, log.read_text()
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    for request_id, path in [("trace-123", "/api/v1/usage"), ("poll-1", job_id), ("poll-2", job_id)]:
        assert any(line.get("request_id") == request_id and path in line["message"] for line in lines), request_id


def _key_and_job(data_dir: Path) -> tuple[str, str]:
    """An account's key and a pending job of it, written beside the running server."""
    services = Services.build(Settings(data_dir=data_dir, demo_account=False, workers=0))
    try:
        key = new_key(services)
        return key, pending_job(services.db, key)
    finally:
        services.close()


def test_json_log_lines_carry_the_job_id() -> None:
    import logging

    from konvrt.observability import JsonFormatter, job_context

    record = logging.LogRecord("konvrt.worker", logging.WARNING, __file__, 1, "slow %s", ("encode",), None)
    with job_context("j_abc"):
        line = json.loads(JsonFormatter().format(record))
    assert line["job_id"] == "j_abc" and line["message"] == "slow encode" and line["level"] == "warning"
    assert "job_id" not in json.loads(JsonFormatter().format(record))
