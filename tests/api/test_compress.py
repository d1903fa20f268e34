"""The seed's flow end to end over real HTTP: compress, status, download, usage; credits and limits."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import av
import httpx
import pytest

from konvrt.db import Job, utcnow
from tests.conftest import REAL_VIDEO, LiveServer, make_clip, wait_for_job


def submit(client: httpx.Client, path: Path, **fields: str) -> httpx.Response:
    with path.open("rb") as f:
        return client.post("/api/v1/compress", files={"file": (path.name, f, "video/mp4")}, data=fields)


def test_seed_flow_compresses_a_real_phone_video(live_server: LiveServer) -> None:
    key = live_server.account()
    source = REAL_VIDEO / "fire2.mp4"
    with live_server.client(key) as client:
        res = submit(client, source, codec="h264", quality="23")
        assert res.status_code == 202, res.text
        body = res.json()
        assert set(body) >= {"success", "job_id", "status", "status_url", "credits_charged"}
        assert body["success"] is True and body["status"] == "pending"
        assert re.fullmatch(r"j_[a-z0-9]{16}", body["job_id"])
        assert body["status_url"] == f"/api/v1/status/{body['job_id']}"
        assert body["credits_charged"] == 1

        done = wait_for_job(client, body["job_id"])
        assert done["status"] == "completed", done
        assert done["progress"] == 100
        assert done["input"] == {"filename": "fire2.mp4", "size_bytes": source.stat().st_size}
        out = done["output"]
        assert out["filename"] == "fire2-compressed.mp4"
        assert out["download_url"] == f"/api/v1/download/{body['job_id']}"
        assert out["compression_ratio"] == round(100 * (1 - out["size_bytes"] / source.stat().st_size))
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out["expires_at"])

        dl = client.get(out["download_url"])
        assert dl.status_code == 200
        assert dl.headers["content-type"] == "video/mp4"
        assert int(dl.headers["content-length"]) == out["size_bytes"] == len(dl.content)
        assert 'filename="fire2-compressed.mp4"' in dl.headers["content-disposition"]
        with av.open(io.BytesIO(dl.content)) as container:
            video = container.streams.video[0]
            assert video.codec_context.name == "h264"
            assert video.codec_context.pix_fmt == "yuv420p"
            assert container.streams.audio, "the phone video's audio is kept"

        ranged = client.get(out["download_url"], headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and ranged.content == dl.content[:100]
        for unserved in ("items=0-5", "bytes=0-1,5-9", "bytes=", "bogus"):  # RFC 9110: answer the whole file
            whole = client.get(out["download_url"], headers={"Range": unserved})
            assert whole.status_code == 200 and whole.content == dl.content, unserved
        for outside in (f"bytes={len(dl.content)}-", "bytes=10-5"):
            refused = client.get(out["download_url"], headers={"Range": outside})
            assert refused.status_code == 416 and refused.json()["code"] == "range_not_satisfiable", outside
        head = client.head(out["download_url"])
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(dl.content)

        usage = client.get("/api/v1/usage").json()
        assert usage == {"plan": "pro", "credits": {"balance": 499, "total_purchased": 500}}


def test_seed_python_example_runs_unchanged(live_server: LiveServer, tmp_path: Path, monkeypatch: object) -> None:
    """The seed's `requests` example, with only the base URL and key replaced."""
    key = live_server.account()
    make_clip(tmp_path / "input.mp4", seconds=1)
    seed = f'''
import requests
import time
# Upload and compress
with open("input.mp4", "rb") as f:
    res = requests.post(
        "{live_server.url}/api/v1/compress",
        headers={{"Authorization": "Bearer {key}"}},
        files={{"file": f}},
        data={{"codec": "h264", "quality": "23"}},
    )
job_id = res.json()["job_id"]
# Poll for completion
while True:
    check = requests.get(
        f"{live_server.url}/api/v1/status/{{job_id}}",
        headers={{"Authorization": "Bearer {key}"}},
    )
    data = check.json()
    print(f"Status: {{data['status']}} ({{data['progress']}}%)")
    if data["status"] in ("completed", "failed"):
        break
    time.sleep(3)
# Download result
if data["status"] == "completed":
    dl = requests.get(
        f"{live_server.url}/api/v1/download/{{job_id}}",
        headers={{"Authorization": "Bearer {key}"}},
    )
    with open("output.mp4", "wb") as f:
        f.write(dl.content)
'''
    import os
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", seed], cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ}
    )
    assert run.returncode == 0, run.stderr
    assert "Status: completed (100%)" in run.stdout
    with av.open(str(tmp_path / "output.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_codecs_and_resolution(live_server: LiveServer, tmp_path: Path) -> None:
    key = live_server.account()
    source = make_clip(tmp_path / "wide.mp4", seconds=1, size="640x360")
    with live_server.client(key) as client:
        for codec, expected, price in (("h265", "hevc", 2), ("hevc", "hevc", 2), ("av1", "libdav1d", 2)):
            res = submit(client, source, codec=codec, quality="35", resolution="320x240")
            assert res.status_code == 202, res.text
            assert res.json()["credits_charged"] == price
            done = wait_for_job(client, res.json()["job_id"])
            assert done["status"] == "completed", done
            data = client.get(done["output"]["download_url"]).content
            with av.open(io.BytesIO(data)) as container:
                video = container.streams.video[0]
                assert video.codec_context.name == expected
                assert (video.codec_context.width, video.codec_context.height) == (320, 180)


def test_auth_errors(live_server: LiveServer, clip: Path) -> None:
    with live_server.client() as anonymous:
        res = anonymous.get("/api/v1/usage")
        assert res.status_code == 401
        assert res.headers["www-authenticate"] == "Bearer"
        assert res.json()["success"] is False and res.json()["code"] == "missing_api_key"
    with live_server.client("kvrt_" + "x" * 40) as wrong:
        assert wrong.get("/api/v1/usage").status_code == 401
    with live_server.client(live_server.account(plan="free")) as free:
        res = submit(free, clip)
        assert res.status_code == 403
        assert res.json()["error"] == "API access requires a Pro or Team plan."


def test_jobs_are_invisible_to_other_accounts(live_server: LiveServer, clip: Path) -> None:
    owner, stranger = live_server.account(), live_server.account()
    with live_server.client(owner) as client:
        job_id = submit(client, clip).json()["job_id"]
    with live_server.client(stranger) as client:
        theirs = client.get(f"/api/v1/status/{job_id}")
        nobodys = client.get("/api/v1/status/j_doesnotexist0000")
        assert theirs.status_code == nobodys.status_code == 404
        assert theirs.json()["code"] == nobodys.json()["code"] == "job_not_found"
        assert client.get(f"/api/v1/download/{job_id}").status_code == 404


def test_download_before_completion_is_409(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)  # nobody encodes: the job stays pending
    with server.client(server.account()) as client:
        job_id = submit(client, clip).json()["job_id"]
        res = client.get(f"/api/v1/download/{job_id}")
        assert res.status_code == 409
        assert res.json()["code"] == "job_not_ready"
        assert client.get(f"/api/v1/status/{job_id}").json()["progress"] == 0


def test_expired_download_is_410_and_the_file_is_gone(live_server: LiveServer, clip: Path) -> None:
    with live_server.client(live_server.account()) as client:
        job_id = submit(client, clip).json()["job_id"]
        assert wait_for_job(client, job_id)["status"] == "completed"
        services = live_server.services
        with services.db.write() as session:
            job = session.get(Job, job_id)
            assert job is not None and job.output_key is not None
            job.expires_at = utcnow() - timedelta(seconds=1)
            output = services.storage.download_path(job.output_key)
        assert output is not None and output.exists()
        assert services.pool is not None
        services.pool.sweep()
        assert not output.exists()
        res = client.get(f"/api/v1/download/{job_id}")
        assert res.status_code == 410
        assert res.json()["code"] == "download_expired"


def test_not_a_video_is_400_and_free(live_server: LiveServer, tmp_path: Path) -> None:
    key = live_server.account()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 100)
    audio_only = REAL_VIDEO / "multiple-aac-tracks.mp4"
    with live_server.client(key) as client:
        for path in (text, audio_only):
            res = submit(client, path)
            assert res.status_code == 400, res.text
            assert res.json()["code"] == "unreadable_media"
        assert "no video stream" in submit(client, audio_only).json()["error"]
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 500
    assert _stored_files(live_server) == []


def test_bad_fields_are_400_naming_the_field(live_server: LiveServer, clip: Path) -> None:
    with live_server.client(live_server.account()) as client:
        for fields, field in (
            ({"codec": "vp8"}, "codec"),
            ({"quality": "17"}, "quality"),
            ({"quality": "abc"}, "quality"),
            ({"method": "fast"}, "method"),
            ({"resolution": "big"}, "resolution"),
            ({"webhook_url": "ftp://example.com/x"}, "webhook_url"),
        ):
            res = submit(client, clip, **fields)
            assert res.status_code == 400, (fields, res.text)
            assert res.json()["field"] == field
        res = client.post("/api/v1/compress", data={"codec": "h264"}, files={"other": ("a", b"x")})
        assert res.status_code == 400
        res = client.post("/api/v1/compress", content=b"{}", headers={"Content-Type": "application/json"})
        assert res.status_code == 400 and res.json()["code"] == "not_multipart"
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 500
    assert _stored_files(live_server) == []


def test_too_large_is_413_before_reading_and_mid_stream(
    live_server_factory: Callable[..., LiveServer], clip: Path
) -> None:
    server = live_server_factory(max_video_bytes=10_000)
    with server.client(server.account()) as client:
        declared = client.post(
            "/api/v1/compress",
            content=b"x" * 200_000,
            headers={"Content-Type": "multipart/form-data; boundary=abc"},
        )
        assert declared.status_code == 413
        assert declared.json()["code"] == "payload_too_large"

        def chunked() -> object:
            yield b'--abc\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'
            for _ in range(20):
                yield b"\0" * 4096
            yield b"\r\n--abc--\r\n"

        streamed = client.post(
            "/api/v1/compress", content=chunked(), headers={"Content-Type": "multipart/form-data; boundary=abc"}
        )
        assert streamed.status_code == 413
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 500
    assert _stored_files(server) == []


def test_balance_never_goes_negative_under_racing_submits(live_server: LiveServer, clip: Path) -> None:
    key = live_server.account(credits=7)
    data = clip.read_bytes()

    def one(_: int) -> int:
        with live_server.client(key) as client:
            res = client.post("/api/v1/compress", files={"file": ("c.mp4", data)}, data={"codec": "h265"})
            return res.status_code

    with ThreadPoolExecutor(max_workers=24) as pool:
        codes = list(pool.map(one, range(24)))
    assert codes.count(202) == 3  # 7 credits buy three h265 jobs at 2 credits each
    assert codes.count(402) == 21
    with live_server.client(key) as client:
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 1


def test_failed_job_is_refunded_with_a_sentence(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)
    with server.client(server.account()) as client:
        job_id = submit(client, clip).json()["job_id"]
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 499
        # The stored upload vanishes (a disk fault): the worker must fail the job cleanly and refund.
        with server.services.db.read() as session:
            job = session.get(Job, job_id)
            assert job is not None
            server.services.storage.delete(job.input_key)
        pool = server.services.start_workers(1, sweeper=False)
        done = wait_for_job(client, job_id)
        pool.stop()
        assert done["status"] == "failed"
        assert done["error"] and "Traceback" not in done["error"] and "/" not in done["error"]
        assert client.get("/api/v1/usage").json()["credits"]["balance"] == 500
        nothing = client.get(f"/api/v1/download/{job_id}")  # a failed job will never be "completed"
        assert nothing.status_code == 409 and nothing.json()["code"] == "job_failed"
        assert done["error"] in nothing.json()["error"]


def test_unknown_route_and_method_are_json(live_server: LiveServer) -> None:
    with live_server.client() as client:
        res = client.get("/api/v1/nothing-here")
        assert res.status_code == 404 and res.json() == {
            "success": False,
            "error": "No such endpoint.",
            "code": "not_found",
        }
        res = client.delete("/api/v1/usage")
        assert res.status_code == 405 and res.json()["code"] == "method_not_allowed"


def _stored_files(server: LiveServer) -> list[Path]:
    root = server.services.settings.data_dir / "files"
    return [p for p in root.rglob("*") if p.is_file()]


REAL_SET = ("bear-vp9-odd-dimensions.webm", "sample_sef_slow_motion.mp4", "roadtrip-vp92-10bit.webm")
DECODERS = {"h264": "h264", "h265": "hevc", "av1": "libdav1d"}


@pytest.mark.parametrize("codec", ["h264", "h265", "av1"])
def test_each_codec_on_three_real_videos(live_server: LiveServer, codec: str) -> None:
    key = live_server.account()
    with live_server.client(key) as client:
        job_ids = {}
        for name in REAL_SET:
            res = submit(client, REAL_VIDEO / name, codec=codec, quality="32")
            assert res.status_code == 202, (name, res.text)
            job_ids[name] = res.json()["job_id"]
        for name, job_id in job_ids.items():
            done = wait_for_job(client, job_id)
            assert done["status"] == "completed", (name, done)
            data = client.get(done["output"]["download_url"]).content
            with av.open(str(REAL_VIDEO / name)) as original, av.open(io.BytesIO(data)) as output:
                video = output.streams.video[0]
                assert video.codec_context.name == DECODERS[codec], name
                assert video.codec_context.width % 2 == 0 and video.codec_context.height % 2 == 0, name
                assert video.codec_context.pix_fmt == "yuv420p", name
                assert bool(output.streams.audio) == bool(original.streams.audio), name
                assert output.duration is not None and original.duration is not None
                assert abs(output.duration - original.duration) / 1e6 < 0.5, name
