"""Media fixtures: the bundled ffmpeg, the real test videos, and small clips made with lavfi at run time."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest

from konvrt.media.encode import compress
from konvrt.media.params import CompressParams
from konvrt.media.probe import MediaInfo, probe
from tests.conftest import REAL_VIDEO


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    return str(imageio_ffmpeg.get_ffmpeg_exe())


@pytest.fixture(scope="session")
def real() -> Callable[[str], Path]:
    def find(name: str) -> Path:
        path = REAL_VIDEO / name
        if not path.exists():  # the shared media are part of the suite: a missing one is a failure, not a skip
            pytest.fail(f"real test video {name} is not in {REAL_VIDEO}")
        return path

    return find


@pytest.fixture(scope="session")
def probe_ok() -> Callable[[Path], MediaInfo]:
    """probe() with the default limits (4 h, 8K)."""

    def run(path: Path) -> MediaInfo:
        return probe(path, max_duration=4 * 3600.0, max_pixels=7680 * 4320)

    return run


@pytest.fixture
def lavfi_clip(ffmpeg: str, tmp_path: Path) -> Callable[..., Path]:
    """lavfi_clip("clip.mp4", seconds=2, size="320x240", audio=True, extra=[...]) -> a fresh lavfi clip.

    `vf` adds a video filter, `video_codec`/`audio_codec` choose encoders, `extra` goes before the output.
    """

    def make(
        name: str = "clip.mp4",
        *,
        seconds: float = 2,
        size: str = "320x240",
        rate: str = "25",
        audio: bool = True,
        audio_layout: str = "stereo",
        vf: str | None = None,
        video_codec: str = "libx264",
        audio_codec: str = "aac",
        pix_fmt: str = "yuv420p",
        extra: list[str] | None = None,
    ) -> Path:
        out = tmp_path / name
        argv = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}"]  # fmt: skip
        if audio:
            argv += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=48000"]
        if vf:
            argv += ["-vf", vf]
        argv += ["-c:v", video_codec, "-pix_fmt", pix_fmt]
        if video_codec == "libx264":
            argv += ["-preset", "ultrafast"]
        if audio:
            argv += ["-c:a", audio_codec, "-ac", "2" if audio_layout == "stereo" else "1"]
        argv += [*(extra or []), str(out)]
        subprocess.run(argv, check=True, timeout=120)
        return out

    return make


@dataclass
class Encoded:
    path: Path
    note: str | None
    progress: list[int]
    seconds: float


@pytest.fixture
def encode(ffmpeg: str, probe_ok: Callable[[Path], MediaInfo], tmp_path: Path) -> Callable[..., Encoded]:
    """encode(src, codec="h264", preset="ultrafast", **params) -> Encoded; raises what compress() raises."""
    counter = iter(range(1000))

    def run(src: Path, *, threads: int = 2, timeout: float = 120.0, **fields: Any) -> Encoded:
        fields.setdefault("preset", "ultrafast")
        dst = tmp_path / f"encoded-{next(counter)}.mp4"
        progress: list[int] = []
        started = time.monotonic()
        result = compress(ffmpeg, src, dst, probe_ok(src), CompressParams(**fields), threads=threads, nice=10,
                          timeout=timeout, stall_timeout=60.0, on_progress=progress.append)  # fmt: skip
        return Encoded(dst, result.note, progress, time.monotonic() - started)

    return run
