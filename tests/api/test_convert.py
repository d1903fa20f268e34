"""POST /api/v1/convert over real HTTP: the bytes and headers, credits and refunds, limits, and a free event loop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pyvips

from tests.conftest import REAL_IMAGE, LiveServer

PHOTO = REAL_IMAGE / "Landscape_9.jpg"
BIG_PHOTO = REAL_IMAGE / "ultraHDR.jpg"  # 12.5 MP


def post(client: httpx.Client, path: Path, name: str | None = None, **fields: str) -> httpx.Response:
    with path.open("rb") as f:
        return client.post("/api/v1/convert", files={"file": (name or path.name, f, "image/jpeg")}, data=fields)


def balance(client: httpx.Client) -> int:
    value: int = client.get("/api/v1/usage").json()["credits"]["balance"]
    return value


def test_converts_and_answers_the_image_with_its_headers(live_server: LiveServer) -> None:
    with live_server.client(live_server.account(credits=10)) as client:
        res = post(client, PHOTO, format="webp", quality="70", width="200")
        assert res.status_code == 200, res.text
        assert res.headers["content-type"] == "image/webp"
        assert res.headers["x-original-size"] == str(PHOTO.stat().st_size)
        assert res.headers["x-output-size"] == str(len(res.content)) == res.headers["content-length"]
        assert res.headers["x-output-format"] == "webp"
        assert res.headers["x-credits-charged"] == "1"
        assert res.headers["content-disposition"] == 'inline; filename="Landscape_9.webp"'
        out = pyvips.Image.new_from_buffer(res.content, "")
        assert (out.width, out.height) == (200, 154)
        assert balance(client) == 9


def test_jpeg_alias_and_fit(live_server: LiveServer) -> None:
    with live_server.client(live_server.account()) as client:
        res = post(client, PHOTO, format="jpeg", width="100", height="100", fit="contain")
        assert res.status_code == 200, res.text
        assert res.headers["content-type"] == "image/jpeg" and res.headers["x-output-format"] == "jpg"
        assert pyvips.Image.new_from_buffer(res.content, "").width == 100


def test_a_wrong_field_is_400_naming_it_and_costs_nothing(live_server: LiveServer) -> None:
    with live_server.client(live_server.account(credits=5)) as client:
        for fields, field in [
            ({"format": "bmp"}, "format"),
            ({"format": "png", "quality": "0"}, "quality"),
            ({"format": "png", "width": "abc"}, "width"),
            ({"format": "png", "fit": "x"}, "fit"),
            ({"format": "png", "colour": "red"}, "colour"),
        ]:
            res = post(client, PHOTO, **fields)
            assert res.status_code == 400, res.text
            assert res.json()["success"] is False and res.json()["field"] == field
        res = client.post("/api/v1/convert", data={"format": "png"}, files={"other": ("x", b"y")})
        assert res.status_code == 400
        assert balance(client) == 5


def test_failed_conversions_are_refunded(live_server: LiveServer, tmp_path: Path) -> None:
    svg = tmp_path / "a.svg"
    svg.write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>')
    with live_server.client(live_server.account(credits=3)) as client:
        cases = [
            (svg, 415, "unsupported_media_type"),
            (REAL_IMAGE / "truncated_jpeg.jpg", 400, "unreadable_image"),
            (REAL_IMAGE / "vp8l-16383x16383.webp", 413, "too_many_pixels"),
        ]
        for path, status, code in cases:
            res = post(client, path, format="png")
            assert res.status_code == status, res.text
            assert res.json() == {"success": False, "error": res.json()["error"], "code": code}
        res = post(client, PHOTO, format="png", width="16384", height="16384", fit="fill")
        assert res.status_code == 400 and res.json()["code"] == "output_too_large"
        assert balance(client) == 3


def test_402_when_the_balance_is_short_and_401_without_a_key(live_server: LiveServer) -> None:
    with live_server.client(live_server.account(credits=0)) as client:
        res = post(client, PHOTO, format="png")
        assert res.status_code == 402 and res.json()["code"] == "insufficient_credits"
    with live_server.client() as client:
        assert post(client, PHOTO, format="png").status_code == 401


def test_the_balance_never_goes_below_zero_under_a_race(live_server: LiveServer) -> None:
    key = live_server.account(credits=3)

    def one(_: int) -> int:
        with live_server.client(key) as client:
            return post(client, PHOTO, format="jpg", width="64").status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(8)))
    assert statuses.count(200) == 3 and statuses.count(402) == 5
    with live_server.client(key) as client:
        assert balance(client) == 0


def _raw_post(url: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /api/v1/convert HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        answer = b""
        while not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_413_from_content_length_before_reading_the_body(live_server: LiveServer) -> None:
    key = live_server.account()
    started = time.monotonic()
    answer = _raw_post(
        live_server.url,
        {
            "Authorization": f"Bearer {key}",
            "Content-Length": str(60 * 1024 * 1024),
            "Content-Type": "multipart/form-data; boundary=b",
        },
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"code":"payload_too_large"' in answer
    assert time.monotonic() - started < 5


def test_413_mid_stream_without_content_length(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(max_image_bytes=1024 * 1024)
    key = server.account(credits=2)
    boundary = "bound"

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="format"\r\n\r\npng\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'
        ).encode()
        for _ in range(40):
            yield b"\xff" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    with server.client(key) as client:
        res = client.post(
            "/api/v1/convert", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        assert res.status_code == 413, res.text
        assert "at most 1 MiB" in res.json()["error"]
        assert balance(client) == 2
    assert not [p for p in (server.services.settings.data_dir / "convert-scratch").rglob("*") if p.is_file()]


def test_a_slow_conversion_does_not_stall_other_requests(live_server: LiveServer) -> None:
    key = live_server.account()
    done = threading.Event()

    def slow() -> None:
        with live_server.client(key) as client:
            assert post(client, BIG_PHOTO, format="avif", width="600").status_code == 200
        done.set()

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.5)
    with live_server.client(key) as client:
        for _ in range(5):
            started = time.monotonic()
            assert client.get("/api/v1/usage").status_code == 200
            assert time.monotonic() - started < 0.5
            assert not done.is_set(), "the AVIF encode finished too soon to show anything"
    thread.join(60)


def test_a_full_pool_answers_503_and_charges_nothing_for_it(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(image_threads=1, image_queue=1)
    key = server.account(credits=10)

    def one(_: int) -> int:
        with server.client(key) as client:
            return post(client, BIG_PHOTO, format="avif", width="400").status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(one, range(4)))
    assert statuses.count(503) >= 1 and set(statuses) <= {200, 503}, statuses
    with server.client(key) as client:
        assert balance(client) == 10 - statuses.count(200)
