"""/healthz, /readyz, /metrics and JSON log lines, over live HTTP."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.conftest import LiveServer, free_port, wait_for_job
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
        httpx.get(f"http://127.0.0.1:{port}/api/v1/usage", headers={"X-Request-Id": "trace-123"})
        time.sleep(0.3)
    finally:
        stop(proc)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, log.read_text()
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line.get("request_id") == "trace-123" and "/api/v1/usage" in line["message"] for line in lines)


def test_json_log_lines_carry_the_job_id() -> None:
    import logging

    from konvrt.observability import JsonFormatter, job_context

    record = logging.LogRecord("konvrt.worker", logging.WARNING, __file__, 1, "slow %s", ("encode",), None)
    with job_context("j_abc"):
        line = json.loads(JsonFormatter().format(record))
    assert line["job_id"] == "j_abc" and line["message"] == "slow encode" and line["level"] == "warning"
    assert "job_id" not in json.loads(JsonFormatter().format(record))
