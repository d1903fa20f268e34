"""S3-compatible object storage (AWS, MinIO, R2, Ceph…): the `Storage` protocol over boto3.

Uploads stream into a multipart upload part by part, so the API machine never holds a whole upload
on disk; a background thread sends parts while the next one fills, so the event loop rarely waits.
Workers download the input to a temp file for FFmpeg and upload the output when it is done.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from konvrt.config import Settings

# Parts in flight per upload besides the one being filled: enough to overlap network and client.
_PARTS_IN_FLIGHT = 2
_CHUNK = 256 * 1024


class StorageError(Exception):
    """The object store failed; raised in place of botocore's errors at this seam."""


def parse_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"Not an s3://bucket/prefix URL: {url!r}")
    return parts.netloc, parts.path.strip("/")


def make_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    kwargs: dict[str, Any] = {}
    if settings.s3_endpoint_url:
        kwargs["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_access_key_id:
        kwargs["aws_access_key_id"] = settings.s3_access_key_id
        kwargs["aws_secret_access_key"] = settings.s3_secret_access_key
    if settings.s3_region:
        kwargs["region_name"] = settings.s3_region
    # Path-style addressing: MinIO and most self-hosted stores have no per-bucket DNS names.
    style = "path" if settings.s3_endpoint_url else "auto"
    config = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        max_pool_connections=32,
        s3={"addressing_style": style},
        connect_timeout=5,
        read_timeout=60,
    )
    return boto3.client("s3", config=config, **kwargs)


class _MultipartWriter:
    """A write-only file whose bytes become one S3 object: parts of `part_bytes`, sent in the background."""

    def __init__(self, client: Any, bucket: str, key: str, part_bytes: int) -> None:
        self.client, self.bucket, self.key, self.part_bytes = client, bucket, key, part_bytes
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[Future[dict[str, Any]]] = []
        self.sender = ThreadPoolExecutor(1, thread_name_prefix="s3-part")

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= self.part_bytes:
            self._send(bytes(self.buffer[: self.part_bytes]))
            del self.buffer[: self.part_bytes]
        return len(data)

    def _send(self, body: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        pending = [f for f in self.parts if not f.done()]
        if len(pending) >= _PARTS_IN_FLIGHT:
            pending[0].result()  # back-pressure: never more than a few parts in memory
        self.parts.append(self.sender.submit(self._upload_part, number, body))

    def _upload_part(self, number: int, body: bytes) -> dict[str, Any]:
        res = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        return {"PartNumber": number, "ETag": res["ETag"]}

    def commit(self) -> None:
        try:
            if self.upload_id is None:  # smaller than one part: a single PUT
                self.client.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))
                return
            if self.buffer:
                self._send(bytes(self.buffer))
            done = [f.result() for f in self.parts]
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": done}
            )
        finally:
            self.sender.shutdown(wait=True)

    def abort(self) -> None:
        self.sender.shutdown(wait=True, cancel_futures=True)
        if self.upload_id is not None:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)


class S3Storage:
    """Objects live under `prefix/` in `bucket`; a temp dir under `scratch` holds what FFmpeg reads."""

    def __init__(self, client: Any, bucket: str, prefix: str, scratch: Path, part_bytes: int = 8 << 20) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.scratch, self.part_bytes = scratch, part_bytes
        self.scratch.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        bucket, prefix = parse_url(settings.storage_url)
        return cls(make_client(settings), bucket, prefix, settings.data_dir / "scratch", settings.s3_part_bytes)

    def _key(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"storage key escapes the prefix: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        sink = _MultipartWriter(self.client, self.bucket, self._key(key), self.part_bytes)
        try:
            yield cast(BinaryIO, sink)
        except BaseException:
            sink.abort()
            raise
        sink.commit()

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="s3-", dir=self.scratch))
        path = folder / "object"
        try:
            self.client.download_file(self.bucket, self._key(key), str(path))
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._key(key))
        path.unlink(missing_ok=True)

    def size(self, key: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.size(key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def download_path(self, key: str) -> Path | None:
        return None  # streamed by `stream` or redirected by `presigned_url`

    def stream(self, key: str, first: int | None = None, last: int | None = None) -> Iterator[bytes]:
        """The object's bytes, or bytes first..last inclusive, as they arrive from S3."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if first is not None:
            kwargs["Range"] = f"bytes={first}-{'' if last is None else last}"
        body = self.client.get_object(**kwargs)["Body"]
        try:
            yield from body.iter_chunks(_CHUNK)
        finally:
            body.close()

    def presigned_url(self, key: str, filename: str, content_type: str, expires: int = 300) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": content_type,
        }
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def healthy(self) -> bool:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception:
            return False
        return True
