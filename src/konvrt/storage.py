"""Where uploads and outputs live, behind one small protocol: a local directory by default."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

if TYPE_CHECKING:
    from konvrt.config import Settings


class Storage(Protocol):
    def writer(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A file to stream into; published under `key` only if the block ends without error."""

    def local_path(self, key: str) -> AbstractContextManager[Path]:
        """A local file holding the object, for FFmpeg and PyAV to open."""

    def put_file(self, key: str, path: Path) -> None:
        """Publish a finished local file under `key` (the local file is moved or consumed)."""

    def size(self, key: str) -> int: ...

    def download_path(self, key: str) -> Path | None:
        """A local path to serve directly, or None when the backend streams it otherwise."""

    def delete(self, key: str) -> None: ...

    def healthy(self) -> bool: ...


class LocalStorage:
    """Objects are files under a root; publishing is an atomic rename, so readers never see halves."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        (self.root / ".partial").mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"storage key escapes the root: {key!r}")
        return path

    def _partial(self) -> Path:
        return self.root / ".partial" / uuid.uuid4().hex

    @contextmanager
    def writer(self, key: str) -> Iterator[BinaryIO]:
        final, partial = self._path(key), self._partial()
        try:
            with open(partial, "wb") as f:
                yield f
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)

    @contextmanager
    def local_path(self, key: str) -> Iterator[Path]:
        yield self._path(key)

    def put_file(self, key: str, path: Path) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, final)
        except OSError:  # another filesystem: copy to a partial, then rename
            partial = self._partial()
            shutil.copyfile(path, partial)
            os.replace(partial, final)
            path.unlink(missing_ok=True)

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def download_path(self, key: str) -> Path | None:
        return self._path(key)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def healthy(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK)


def open_storage(url: str, data_dir: Path, settings: Settings | None = None) -> Storage:
    if not url:
        return LocalStorage(data_dir / "files")
    if url.startswith("file://"):
        return LocalStorage(Path(url.removeprefix("file://")))
    if url.startswith("s3://") and settings is not None:
        from konvrt.storage_s3 import S3Storage

        return S3Storage.from_settings(settings)
    raise ValueError(
        f"Unsupported KONVRT_STORAGE_URL {url!r}: use s3://bucket/prefix, a file:// path or leave it empty."
    )
