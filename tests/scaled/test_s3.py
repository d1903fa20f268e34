"""S3 storage against moto's standalone server: multipart streaming, aborts, ranges and presigned downloads."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import boto3
import httpx
import pytest

from konvrt.api.remote_download import RangeNotSatisfiable, parse_range
from konvrt.storage_s3 import S3Storage, make_client
from tests.conftest import LiveServer, SettingsFactory, wait_for_job
from tests.scaled.conftest import MotoServer

pytestmark = pytest.mark.s3

MiB = 1 << 20


def _storage(moto: MotoServer, settings_factory: SettingsFactory, bucket: str) -> S3Storage:
    settings = settings_factory(**moto.settings(bucket, "pre/fix"), s3_part_bytes=5 * MiB)
    return S3Storage.from_settings(settings)


def _keys(moto: MotoServer, bucket: str) -> list[str]:
    s3 = boto3.client("s3", **moto.client_kwargs())
    return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_writer_streams_a_multipart_upload(
    moto_server: MotoServer, settings_factory: SettingsFactory, s3_bucket: str
) -> None:
    storage = _storage(moto_server, settings_factory, s3_bucket)
    data = os.urandom(12 * MiB + 123)
    with storage.writer("jobs/a/input") as sink:
        for i in range(0, len(data), 64 * 1024):
            sink.write(data[i : i + 64 * 1024])
        assert len(sink.parts) == 2, "parts leave while the upload is still arriving"  # type: ignore[attr-defined]
        assert _keys(moto_server, s3_bucket) == [], "nothing is visible before the upload completes"
    assert _keys(moto_server, s3_bucket) == ["pre/fix/jobs/a/input"]
    assert storage.size("jobs/a/input") == len(data)
    assert b"".join(storage.stream("jobs/a/input", 5, 9)) == data[5:10]
    with storage.local_path("jobs/a/input") as path:
        assert path.read_bytes() == data
    assert not path.exists()
    storage.delete("jobs/a/input")
    assert _keys(moto_server, s3_bucket) == [] and storage.healthy()


def test_a_failed_upload_leaves_nothing(
    moto_server: MotoServer, settings_factory: SettingsFactory, s3_bucket: str
) -> None:
    storage = _storage(moto_server, settings_factory, s3_bucket)
    with pytest.raises(RuntimeError), storage.writer("jobs/b/input") as sink:
        sink.write(os.urandom(11 * MiB))
        raise RuntimeError("client went away")
    s3 = boto3.client("s3", **moto_server.client_kwargs())
    assert s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", []) == []
    assert _keys(moto_server, s3_bucket) == []


def test_small_objects_and_put_file(
    moto_server: MotoServer, settings_factory: SettingsFactory, s3_bucket: str, tmp_path: Path
) -> None:
    storage = _storage(moto_server, settings_factory, s3_bucket)
    with storage.writer("small") as sink:
        sink.write(b"hello")
    assert b"".join(storage.stream("small")) == b"hello"
    out = tmp_path / "out.mp4"
    out.write_bytes(b"x" * 1000)
    storage.put_file("jobs/c/output.mp4", out)
    assert not out.exists() and storage.size("jobs/c/output.mp4") == 1000
    with pytest.raises(ValueError):
        storage.writer("../escape").__enter__()


def test_unreachable_store_is_unhealthy(settings_factory: SettingsFactory) -> None:
    settings = settings_factory(storage_url="s3://nowhere", s3_endpoint_url="http://127.0.0.1:9", s3_access_key_id="x")
    storage = S3Storage(make_client(settings), "nowhere", "", settings.data_dir / "scratch")
    assert storage.healthy() is False


def test_parse_range() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 9)
    assert parse_range("bytes=90-", 100) == (90, 99)
    assert parse_range("bytes=-10", 100) == (90, 99)
    assert parse_range("bytes=50-500", 100) == (50, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=100-", 100)


def test_seed_flow_on_s3(
    live_server_factory: Callable[..., LiveServer], moto_server: MotoServer, s3_bucket: str, clip: Path
) -> None:
    server = live_server_factory(**moto_server.settings(s3_bucket))
    data_dir = server.services.settings.data_dir
    with server.client(server.account()) as client:
        res = client.post("/api/v1/compress", files={"file": clip.open("rb")})
        assert res.status_code == 202, res.text
        job_id = res.json()["job_id"]
        done = wait_for_job(client, job_id)
        assert done["status"] == "completed", done
        size = done["output"]["size_bytes"]
        whole = client.get(f"/api/v1/download/{job_id}")
        assert whole.status_code == 200 and len(whole.content) == size and whole.content[4:8] == b"ftyp"
        assert whole.headers["content-type"] == "video/mp4"
        assert whole.headers["content-disposition"] == 'attachment; filename="clip-compressed.mp4"'
        part = client.get(f"/api/v1/download/{job_id}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == whole.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{size}"
        assert client.get(f"/api/v1/download/{job_id}", headers={"Range": f"bytes={size}-"}).status_code == 416
    assert _keys(moto_server, s3_bucket) == [f"konvrt/jobs/{job_id}/output.mp4"], "the input is gone once done"
    assert [
        p for p in data_dir.rglob("*") if p.is_file() and p.stat().st_size > 10_000 and "konvrt.db" not in p.name
    ] == []


def test_presigned_download_redirects(
    live_server_factory: Callable[..., LiveServer], moto_server: MotoServer, s3_bucket: str, clip: Path
) -> None:
    server = live_server_factory(**moto_server.settings(s3_bucket), s3_presigned_downloads=True)
    with server.client(server.account()) as client:
        job_id = client.post("/api/v1/compress", files={"file": clip.open("rb")}).json()["job_id"]
        done = wait_for_job(client, job_id)
        res = client.get(f"/api/v1/download/{job_id}")
        assert res.status_code == 307
        fetched = httpx.get(res.headers["location"])
        assert fetched.status_code == 200 and len(fetched.content) == done["output"]["size_bytes"]
        assert "clip-compressed.mp4" in fetched.headers["content-disposition"]
