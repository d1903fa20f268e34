"""Hardening: request ids, hostile file names, malformed uploads, slow uploads, and ids that never leak."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from konvrt.app import create_app
from konvrt.db import ApiKey
from konvrt.filenames import clean_filename, content_disposition
from konvrt.observability import REGISTRY
from tests.conftest import LiveServer, SettingsFactory, free_port, wait_for_job

BOUNDARY = "hardeningboundary"


def _multipart(parts: list[tuple[bytes, bytes]]) -> bytes:
    """Raw parts (Content-Disposition parameters, body): exactly the bytes a hostile client would send."""
    out = b""
    for disposition, body in parts:
        out += f"--{BOUNDARY}\r\n".encode() + b"Content-Disposition: form-data; " + disposition + b"\r\n\r\n"
        out += body + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def _post_raw(client: httpx.Client, body: bytes, content_type: str | None = None) -> httpx.Response:
    headers = {"Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY}"}
    return client.post("/api/v1/compress", content=body, headers=headers)


# --- request ids ---------------------------------------------------------------------------------------------


@pytest.fixture
def app_with_extra_routes(settings_factory: SettingsFactory) -> Iterator[str]:
    """The real app plus two routes that log and crash, served on a real port."""
    app = create_app(settings_factory(workers=0))

    @app.get("/api/v1/_log")
    async def _log() -> dict[str, bool]:
        logging.getLogger("konvrt.test").warning("inside the request")
        return {"ok": True}

    @app.get("/api/v1/_crash")
    async def _crash() -> None:
        raise RuntimeError("boom")

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def test_every_response_and_log_line_carries_the_request_id(
    app_with_extra_routes: str, caplog: pytest.LogCaptureFixture
) -> None:
    with httpx.Client(base_url=app_with_extra_routes) as client:
        for path in ("/api/v1/usage", "/api/v1/nope", "/docs", "/api/v1/_crash"):
            response = httpx.get(app_with_extra_routes + path)
            assert re.fullmatch(r"req_[0-9a-f]{24}", response.headers["x-request-id"]), path
        # uvicorn closes the connection after an app error, so the crash gets a connection of its own.
        crash = httpx.get(f"{app_with_extra_routes}/api/v1/_crash", headers={"X-Request-Id": "client-chosen-42"})
        assert crash.status_code == 500 and crash.json()["code"] == "internal"
        assert crash.headers["x-request-id"] == "client-chosen-42"
        for insane in ("has space", "x" * 200, 'quote"d', "ünï"):
            echoed = client.get("/api/v1/usage", headers={"X-Request-Id": insane.encode()})
            assert echoed.headers["x-request-id"].startswith("req_")

        with caplog.at_level(logging.WARNING, logger="konvrt"):
            sent = client.get("/api/v1/_log", headers={"X-Request-Id": "trace-me"})
    assert sent.headers["x-request-id"] == "trace-me"
    records = [r for r in caplog.records if r.getMessage() == "inside the request"]
    assert [getattr(r, "request_id", None) for r in records] == ["trace-me"]
    crashes = [r for r in caplog.records if "unhandled error" in r.getMessage()]
    assert crashes and all(getattr(r, "request_id", "-") != "-" for r in crashes)
    assert logging.getLogger("konvrt.elsewhere").makeRecord("x", 20, "f", 1, "m", (), None).request_id == "-"


# --- file names ----------------------------------------------------------------------------------------------

HOSTILE_NAMES: list[tuple[bytes, str]] = [
    (b"../../../etc/passwd.mp4", "passwd.mp4"),
    (b"..\\..\\windows\\win.ini.mp4", "win.ini.mp4"),
    (b"nul\x00byte.mp4", "nulbyte.mp4"),
    (b"bad\xff\xfeutf8.mp4", "bad\ufffd\ufffdutf8.mp4"),
    (b"x" * 1000 + b".mp4", "x" * 196 + ".mp4"),
    ("видео \U0001f3ac.mp4".encode(), "видео \U0001f3ac.mp4"),
    ("\u202egnp.mp4".encode(), "gnp.mp4"),
    (b"esc\x1b[31mred\x7f.mp4", "esc[31mred.mp4"),
    (b"line\nbreak\ttab.mp4", "linebreaktab.mp4"),  # a right-to-left override would make it read "4pm.png"
]


def test_hostile_file_names_never_reach_a_path(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)
    with server.client(server.account(credits=100)) as client:
        for raw, expected in HOSTILE_NAMES:
            quoted = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
            body = _multipart([(b'name="file"; filename="' + quoted + b'"', clip.read_bytes())])
            response = _post_raw(client, body)
            assert response.status_code == 202, (raw, response.text)
            status = client.get(f"/api/v1/status/{response.json()['job_id']}").json()
            assert status["input"]["filename"] == expected, raw
        # A CR LF inside a part header ends it: the multipart parser refuses what follows.
        for raw in (b"line\r\nbreak.mp4", b"a\r\n\r\nb.mp4"):
            body = _multipart([(b'name="file"; filename="' + raw + b'"', clip.read_bytes())])
            assert _post_raw(client, body).status_code == 400
    stored = [p.relative_to(server.services.settings.data_dir) for p in server.services.settings.data_dir.rglob("*")]
    for path in stored:
        assert all(part.isascii() and "passwd" not in part and "win.ini" not in part for part in path.parts), path
    assert not Path("/etc/passwd.mp4").exists()


def test_download_names_are_escaped_per_rfc_6266(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=1)
    with server.client(server.account(credits=100)) as client:
        body = _multipart([('name="file"; filename="Été \\"final\\"; v2.mp4"'.encode(), clip.read_bytes())])
        job_id = _post_raw(client, body).json()["job_id"]
        assert wait_for_job(client, job_id)["status"] == "completed"
        header = client.get(f"/api/v1/download/{job_id}").headers["content-disposition"]
    match = re.fullmatch(r'attachment; filename="([ -~]*)"; filename\*=UTF-8\'\'([A-Za-z0-9%._~-]+)', header)
    assert match, header
    assert '"' not in match.group(1) and "\\" not in match.group(1)
    assert unquote(match.group(2)) == 'Été "final"; v2-compressed.mp4'


def test_content_disposition_forms() -> None:
    assert content_disposition("clip-compressed.mp4") == 'attachment; filename="clip-compressed.mp4"'
    assert content_disposition("видео.mp4") == "attachment; filename=\"download.mp4\"; filename*=UTF-8''" + (
        "%D0%B2%D0%B8%D0%B4%D0%B5%D0%BE.mp4"
    )
    assert clean_filename("") == "upload" and clean_filename("../..") == "upload"
    assert clean_filename("\u202egnp.exe") == "gnp.exe"  # no right-to-left override tricks


# --- malformed and slow uploads ------------------------------------------------------------------------------


def test_malformed_uploads_get_clear_4xx(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    video = clip.read_bytes()
    server = live_server_factory(workers=0, max_video_bytes=3 * len(video))
    file_part = (b'name="file"; filename="a.mp4"', video)
    cases: list[tuple[str, httpx.Response, int, str | None]] = []
    with server.client(server.account(credits=100)) as client:
        cases += [
            (
                "duplicate field",
                _post_raw(client, _multipart([file_part, (b'name="codec"', b"h264"), (b'name="codec"', b"h265")])),
                400,
                "codec",
            ),
            ("duplicate file", _post_raw(client, _multipart([file_part, file_part])), 400, "file"),
            ("unknown field", _post_raw(client, _multipart([file_part, (b'name="colour"', b"red")])), 400, "colour"),
            ("file as text", _post_raw(client, _multipart([(b'name="file"', b"hello")])), 400, "file"),
            ("no file", _post_raw(client, _multipart([(b'name="codec"', b"h264")])), 400, "file"),
            ("empty file", _post_raw(client, _multipart([(b'name="file"; filename="a.mp4"', b"")])), 400, "file"),
            ("json", client.post("/api/v1/compress", json={"file": "x"}), 400, None),
            ("text", _post_raw(client, b"hello", "text/plain"), 400, None),
            ("no content type", client.post("/api/v1/compress", content=b"x" * 10), 400, None),
            ("empty body", _post_raw(client, b""), 400, None),
            ("no boundary", _post_raw(client, _multipart([file_part]), "multipart/form-data"), 400, None),
            (
                "wrong boundary",
                _post_raw(client, _multipart([file_part]), "multipart/form-data; boundary=zz"),
                400,
                None,
            ),
            (
                "boundary past RFC 2046's 70 characters",
                _post_raw(client, _multipart([file_part]), "multipart/form-data; boundary=" + "B" * 257),
                400,
                None,
            ),
            ("truncated", _post_raw(client, _multipart([file_part])[:-30]), 400, None),
            ("garbage", _post_raw(client, b"\0\1\2" * 1000), 400, None),
            ("declared too large", _post_raw(client, b"x" * (4 * len(video) + 65536)), 413, None),
            (
                "not a video",
                _post_raw(client, _multipart([(b'name="file"; filename="a.mp4"', b"x" * 5000)])),
                400,
                None,
            ),
        ]
        balance = client.get("/api/v1/usage").json()["credits"]["balance"]
    for name, response, status, field in cases:
        assert response.status_code == status, (name, response.text)
        body = response.json()
        assert body["success"] is False and body["error"] and body["code"], name
        if field is not None:
            assert body.get("field") == field, (name, body)
    assert balance == 100
    assert not list(server.services.settings.data_dir.rglob("input*"))
    by_name = {name: response.json()["error"] for name, response, _, _ in cases}
    assert "openAsBlob" in by_name["text"], "text/plain is what Node's fetch sends: it gets the fix"
    assert "openAsBlob" not in by_name["json"] + by_name["no content type"], "other clients need no Node hint"


def _an_upload_that_stops_early(server: LiveServer, key: str) -> tuple[str, int, bytes]:
    """(host, port, request): a compress request that promises a megabyte and sends a kilobyte of it."""
    host, port = server.url.removeprefix("http://").split(":")
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\n'.encode()
    request = (
        f"POST /api/v1/compress HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    return host, int(port), request + head + b"\0" * 1000


def test_a_stalled_upload_is_dropped_with_a_400(live_server_factory: Callable[..., LiveServer]) -> None:
    """Slowloris: headers and a little of the body, then silence."""
    server = live_server_factory(workers=0, upload_idle_timeout_seconds=1)
    key = server.account()
    host, port, request = _an_upload_that_stops_early(server, key)
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'"upload_timeout"' in answer
    assert time.monotonic() - started < 5
    assert not list(server.services.settings.data_dir.rglob("input*"))


def test_a_client_that_hangs_up_mid_upload_is_no_server_error(
    live_server_factory: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = live_server_factory(workers=0)
    key = server.account()
    host, port, request = _an_upload_that_stops_early(server, key)

    def answered(status: str) -> float:
        labels = {"method": "POST", "route": "/api/v1/compress", "status": status}
        return REGISTRY.get_sample_value("konvrt_http_request_duration_seconds_count", labels) or 0.0

    before = answered("400"), answered("500")
    with caplog.at_level(logging.WARNING):
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(request)
            time.sleep(0.3)
        deadline = time.monotonic() + 5
        while answered("400") == before[0] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert (answered("400"), answered("500")) == (before[0] + 1, before[1])
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not list(server.services.settings.data_dir.rglob("input*"))


# --- ids and keys --------------------------------------------------------------------------------------------


def test_another_accounts_job_looks_like_no_job(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)
    with server.client(server.account()) as owner, server.client(server.account()) as stranger:
        with clip.open("rb") as f:
            job_id = owner.post("/api/v1/compress", files={"file": ("a.mp4", f)}).json()["job_id"]
        unknown = "j_" + "0" * 16
        for method, template in (
            ("GET", "/api/v1/status/{}"),
            ("GET", "/api/v1/download/{}"),
            ("DELETE", "/api/v1/jobs/{}"),
            ("POST", "/api/v1/jobs/{}/webhook/redeliver"),
        ):
            theirs = stranger.request(method, template.format(job_id))
            missing = stranger.request(method, template.format(unknown))
            assert theirs.status_code == missing.status_code == 404
            assert theirs.json()["error"].replace(job_id, unknown) == missing.json()["error"]
            assert theirs.json()["code"] == missing.json()["code"]
        assert owner.get(f"/api/v1/status/{job_id}").status_code == 200
        long_id = stranger.get("/api/v1/status/j_" + "x" * 10_000)
        assert long_id.status_code == 404 and len(long_id.json()["error"]) < 80, "an id is echoed, not any length"


def test_keys_are_stored_only_as_hashes_and_401_names_the_scheme(live_server: LiveServer) -> None:
    key = live_server.account()
    with live_server.services.db.read() as session:
        stored = session.scalars(select(ApiKey)).all()
    assert stored and all(key not in (row.key_hash + row.prefix + row.last4) for row in stored)
    wrong = key[:-1] + ("X" if key[-1] != "X" else "Y")  # one character off (1 in 62 keys ends in X)
    with live_server.client() as client:
        for auth in (None, "Basic abc", f"Bearer {wrong}"):
            response = client.get("/api/v1/usage", headers={"Authorization": auth} if auth else {})
            assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
