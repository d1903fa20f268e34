"""Idempotency-Key on POST /compress and /convert: replays, mismatches, failures, and retries that race."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from konvrt.db import Job
from tests.conftest import REAL_IMAGE, LiveServer


def _compress(client: httpx.Client, clip: Path, key: str | None, **fields: str) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    with clip.open("rb") as f:
        return client.post(
            "/api/v1/compress", files={"file": ("clip.mp4", f, "video/mp4")}, data=fields, headers=headers
        )


def _jobs(server: LiveServer) -> int:
    with server.services.db.read() as session:
        return session.query(Job).count()


def _balance(client: httpx.Client) -> int:
    value: int = client.get("/api/v1/usage").json()["credits"]["balance"]
    return value


def _stored_inputs(server: LiveServer) -> int:
    return len(list(server.services.settings.data_dir.rglob("input")))


def test_a_retry_replays_the_first_answer(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)
    with server.client(server.account(credits=20)) as client, server.client(server.account(credits=20)) as other:
        first = _compress(client, clip, "order-1", quality="30")
        assert first.status_code == 202 and "Idempotent-Replayed" not in first.headers
        again = _compress(client, clip, "order-1", quality="30")  # a new boundary, the same request
        assert again.status_code == 202
        assert again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["content-type"] == "application/json"
        assert again.headers["x-request-id"] != first.headers["x-request-id"]
        assert _balance(client) == 19 and _jobs(server) == 1 and _stored_inputs(server) == 1

        # The key belongs to the account: another account's identical key is another request.
        assert _compress(other, clip, "order-1", quality="30").json()["job_id"] != first.json()["job_id"]
        # Without a key, every request is new.
        assert _compress(client, clip, None, quality="30").json()["job_id"] != first.json()["job_id"]


def test_the_same_key_with_other_parameters_is_422(
    live_server_factory: Callable[..., LiveServer], clip: Path, tmp_path: Path
) -> None:
    server = live_server_factory(workers=0)
    with server.client(server.account(credits=20)) as client:
        assert _compress(client, clip, "k", quality="30").status_code == 202
        other_file = tmp_path / "other.mp4"
        data = clip.read_bytes()
        other_file.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # the last byte differs, whatever it was
        for response in (_compress(client, clip, "k", quality="31"), _compress(client, other_file, "k", quality="30")):
            assert response.status_code == 422, response.text
            assert response.json()["code"] == "idempotency_key_reused"
        assert _balance(client) == 19 and _jobs(server) == 1
        bad = _compress(client, clip, "x" * 256)
        assert bad.status_code == 400 and bad.json()["field"] == "Idempotency-Key"
        with clip.open("rb") as f:
            twice = client.post(
                "/api/v1/compress",
                files={"file": ("clip.mp4", f, "video/mp4")},
                headers=[("Idempotency-Key", "k"), ("Idempotency-Key", "k2")],
            )
        assert twice.status_code == 400 and "once" in twice.json()["error"]
        assert _balance(client) == 19 and _jobs(server) == 1


def test_a_failed_first_request_keeps_nothing(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)
    with server.client(server.account(credits=20)) as client:
        refused = _compress(client, clip, "retry-me", codec="vp9")
        assert refused.status_code == 400
        fixed = _compress(client, clip, "retry-me", codec="h264")
        assert fixed.status_code == 202 and "Idempotent-Replayed" not in fixed.headers


def test_racing_retries_get_one_job_and_one_charge(live_server_factory: Callable[..., LiveServer], clip: Path) -> None:
    server = live_server_factory(workers=0)
    key = server.account(credits=20)
    start = threading.Barrier(8)

    def attempt(_: int) -> httpx.Response:
        with server.client(key) as client:
            start.wait()
            return _compress(client, clip, "race")

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(attempt, range(8)))
    assert [r.status_code for r in answers] == [202] * 8
    assert len({r.json()["job_id"] for r in answers}) == 1
    assert sum("Idempotent-Replayed" in r.headers for r in answers) == 7
    with server.client(key) as client:
        assert _balance(client) == 19
    assert _jobs(server) == 1 and _stored_inputs(server) == 1


def _slow_body(clip: Path, pause: float) -> Iterator[bytes]:
    data = clip.read_bytes()
    boundary = "slowboundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n\r\n'.encode()
    yield head + data[:1000]
    time.sleep(pause)
    yield data[1000:] + f"\r\n--{boundary}--\r\n".encode()


def test_a_retry_while_the_first_is_in_flight_waits_or_gets_409(
    live_server_factory: Callable[..., LiveServer], clip: Path
) -> None:
    server = live_server_factory(workers=0, idempotency_wait_seconds=0.5)
    key = server.account(credits=20)
    headers = {"Idempotency-Key": "slow", "Content-Type": "multipart/form-data; boundary=slowboundary"}
    with ThreadPoolExecutor(1) as pool, server.client(key) as client:
        first = pool.submit(client.post, "/api/v1/compress", content=_slow_body(clip, 2.0), headers=headers)
        time.sleep(0.5)
        started = time.monotonic()
        busy = client.post("/api/v1/compress", content=_slow_body(clip, 0), headers=headers)
        assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_flight"
        assert time.monotonic() - started < 1.5
        assert first.result().status_code == 202
        replay = client.post("/api/v1/compress", content=_slow_body(clip, 0), headers=headers)
        assert replay.json() == first.result().json() and replay.headers["Idempotent-Replayed"] == "true"


def test_convert_replays_the_image_without_a_second_charge(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(workers=0)
    photo = REAL_IMAGE / "Landscape_9.jpg"
    with server.client(server.account(credits=10)) as client:

        def convert() -> httpx.Response:
            with photo.open("rb") as f:
                return client.post(
                    "/api/v1/convert",
                    files={"file": (photo.name, f, "image/jpeg")},
                    data={"format": "webp", "width": "64"},
                    headers={"Idempotency-Key": "img-1"},
                )

        first, again = convert(), convert()
        assert first.status_code == again.status_code == 200
        assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
        for header in ("content-type", "x-output-size", "x-output-format", "x-original-size"):
            assert again.headers[header] == first.headers[header]
        assert _balance(client) == 9
