"""compress() end to end with real FFmpeg: each codec on real uploads and lavfi clips, output properties checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from konvrt.errors import EncodeFailed
from konvrt.media.encode import EncodeResult, compress
from konvrt.media.params import CompressParams
from konvrt.media.probe import MediaInfo, probe

Clip = Callable[..., Path]
Probe = Callable[[Path], MediaInfo]

FAST = {"h264": "ultrafast", "h265": "ultrafast", "av1": "ultrafast"}


def run(
    ffmpeg: str, src: Path, dst: Path, params: CompressParams, progress: list[int] | None = None, **kw: object
) -> EncodeResult:
    seen = progress if progress is not None else []
    options: dict[str, object] = {"threads": 2, "nice": 10, "timeout": 120.0, "stall_timeout": 60.0, **kw}
    info = probe(src, max_duration=3600.0, max_pixels=7680 * 4320)
    return compress(ffmpeg, src, dst, info, params, on_progress=seen.append, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["h264", "h265", "av1"])
@pytest.mark.parametrize("name", ["fire2.mp4", "h265_with_metadata_track.mp4", "sample_shorter_audio.mp4"])
def test_real_uploads_each_codec(
    ffmpeg: str, real: Callable[[str], Path], probe_ok: Probe, tmp_path: Path, codec: str, name: str
) -> None:
    src = real(name)
    dst = tmp_path / "out.mp4"
    progress: list[int] = []
    run(ffmpeg, src, dst, CompressParams(codec=codec, preset=FAST[codec], allow_larger=True), progress)  # type: ignore[arg-type]
    before, after = probe_ok(src), probe_ok(dst)
    assert after.video_codec == {"h264": "h264", "h265": "hevc", "av1": "av1"}[codec]
    assert after.pix_fmt == "yuv420p"
    assert (after.display_width, after.display_height) == (before.display_width, before.display_height)
    assert after.rotation == 0  # turned once, in the pixels
    assert after.audio_codec == "aac"
    assert after.duration == pytest.approx(before.duration, abs=0.15)
    assert progress == sorted(set(progress)) and progress[0] == 0 and progress[-1] == 99
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]  # no temp files left behind


def test_lavfi_clip_resolution_box_and_quality(ffmpeg: str, lavfi_clip: Clip, probe_ok: Probe, tmp_path: Path) -> None:
    src = lavfi_clip(seconds=2, size="640x360")
    small = tmp_path / "small.mp4"
    run(ffmpeg, src, small, CompressParams(quality=40, max_width=320, max_height=320, preset="ultrafast"))
    info = probe_ok(small)
    assert (info.display_width, info.display_height) == (320, 180)
    best = tmp_path / "best.mp4"
    run(ffmpeg, src, best, CompressParams(quality=18, preset="ultrafast", allow_larger=True))
    assert small.stat().st_size < best.stat().st_size


def test_hevc_output_is_tagged_hvc1(ffmpeg: str, lavfi_clip: Clip, tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    run(ffmpeg, lavfi_clip(seconds=1), dst, CompressParams(codec="h265", preset="ultrafast", allow_larger=True))
    assert b"hvc1" in dst.read_bytes()[:200_000] and b"hev1" not in dst.read_bytes()[:200_000]


def test_faststart_puts_moov_first(ffmpeg: str, lavfi_clip: Clip, tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    run(ffmpeg, lavfi_clip(seconds=1), dst, CompressParams(preset="ultrafast", allow_larger=True))
    head = dst.read_bytes()
    assert 0 < head.find(b"moov") < head.find(b"mdat")


def test_failure_leaves_nothing_behind(ffmpeg: str, lavfi_clip: Clip, probe_ok: Probe, tmp_path: Path) -> None:
    src = lavfi_clip(seconds=1)
    info = probe_ok(src)
    src.write_bytes(b"")  # the upload vanished between probe and encode
    dst = tmp_path / "out" / "x.mp4"
    dst.parent.mkdir()
    with pytest.raises(EncodeFailed) as caught:
        compress(ffmpeg, src, dst, info, CompressParams(), threads=1, nice=10, timeout=60, stall_timeout=30,
                 on_progress=lambda _p: None)  # fmt: skip
    assert str(tmp_path) not in caught.value.message
    assert list(dst.parent.iterdir()) == []
