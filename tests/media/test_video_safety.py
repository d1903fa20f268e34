"""Unsafe input and limits: uploaded playlists read nothing, caps on duration and pixels, and the runner's
timeouts, stall detection, cancellation, process-group kill and niceness."""

from __future__ import annotations

import dataclasses
import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from konvrt.errors import BadRequest, EncodeFailed, UnreadableMedia
from konvrt.media import runner
from konvrt.media.encode import compress
from konvrt.media.params import CompressParams
from konvrt.media.probe import MediaInfo, probe

Probe = Callable[[Path], MediaInfo]
Clip = Callable[..., Path]


@pytest.fixture
def http_hits() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request path: (base URL, hits)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()
    thread.join()


def playlist(segment: Path, url: str) -> str:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:1.0,\n{segment}\n#EXTINF:1.0,\n{url}/secret.ts\n#EXT-X-ENDLIST\n"
    )


@pytest.mark.parametrize("name", ["upload.mp4", "upload.avi", "upload.m3u8"])
def test_uploaded_playlist_cannot_read_other_files(
    ffmpeg: str, lavfi_clip: Clip, probe_ok: Probe, tmp_path: Path, http_hits: tuple[str, list[str]], name: str
) -> None:
    """An HLS playlist disguised as a video names a local file and a URL: neither the probe nor FFmpeg reads them."""
    base, hits = http_hits
    other_user = lavfi_clip("someone-elses.ts", seconds=1, size="160x120", audio=False)
    upload = tmp_path / name
    upload.write_text(playlist(other_user, base))
    with pytest.raises(UnreadableMedia):
        probe_ok(upload)
    # Even if a probe let it through, the encode refuses it (the argv carries the same allow-list).
    info = probe_ok(other_user)
    dst = tmp_path / "out.mp4"
    with pytest.raises(EncodeFailed):
        compress(ffmpeg, upload, dst, info, CompressParams(preset="ultrafast"), threads=1, nice=10, timeout=30,
                 stall_timeout=10, on_progress=lambda _p: None)  # fmt: skip
    assert not dst.exists() and hits == []


def test_the_playlist_test_has_teeth(ffmpeg: str, lavfi_clip: Clip, tmp_path: Path) -> None:
    """Control: without the allow-list, plain FFmpeg does open the playlist and read the other file."""
    other_user = lavfi_clip("someone-elses.ts", seconds=1, size="160x120", audio=False)
    upload = tmp_path / "upload.m3u8"
    upload.write_text(playlist(other_user, "http://127.0.0.1:9"))
    done = subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(upload), "-f", "null", "-"],
                          capture_output=True, timeout=60)  # fmt: skip
    assert done.returncode == 0


def test_duration_cap(lavfi_clip: Clip) -> None:
    src = lavfi_clip("clip.mp4", seconds=3, size="160x120")
    with pytest.raises(BadRequest, match="longer than this server accepts"):
        probe(src, max_duration=2.0, max_pixels=10**8)


def test_resolution_cap(real: Callable[[str], Path]) -> None:
    with pytest.raises(BadRequest, match="megapixels"):
        probe(real("8k24fps_300ms.mp4"), max_duration=3600, max_pixels=3840 * 2160)
    assert probe(real("8k24fps_300ms.mp4"), max_duration=3600, max_pixels=7680 * 4320).width == 7680


@pytest.mark.parametrize("blob", [b"", b"hello, not a video\n" * 50, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64])
def test_garbage_is_unreadable(tmp_path: Path, blob: bytes) -> None:
    path = tmp_path / "upload.mp4"
    path.write_bytes(blob)
    with pytest.raises(UnreadableMedia):
        probe(path, max_duration=3600, max_pixels=10**8)


ENDLESS = [
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=160x120:rate=25",
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-f",
    "null",
]


def endless(ffmpeg: str) -> list[str]:
    return [ffmpeg, "-nostdin", "-loglevel", "error", "-progress", "pipe:1", "-nostats", *ENDLESS, "-"]


def test_wall_timeout_kills(ffmpeg: str) -> None:
    positions: list[float] = []
    result = runner.run(endless(ffmpeg), nice=10, timeout=1.5, stall_timeout=30, on_out_time=positions.append)
    assert result.timed_out and not result.ok and result.returncode != 0
    assert positions == sorted(positions) and positions[-1] > 0


def test_cancel_stops_promptly(ffmpeg: str) -> None:
    calls = iter(range(1000))
    result = runner.run(endless(ffmpeg), nice=10, timeout=60, stall_timeout=30, should_stop=lambda: next(calls) > 3)
    assert result.cancelled and result.returncode != 0


def test_stall_is_detected() -> None:
    result = runner.run([sys.executable, "-c", "import time; time.sleep(30)"], nice=0, timeout=60, stall_timeout=1)
    assert result.stalled


def test_whole_process_group_is_killed() -> None:
    """A child the command started dies with it: the group gets the signal, not just the leader."""
    script = "import os, subprocess, sys, time\nsys.stderr.write(f'{os.getpgid(0)}\\n'); sys.stderr.flush()\n" \
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\ntime.sleep(60)\n"  # fmt: skip
    result = runner.run([sys.executable, "-c", script], nice=0, timeout=1.5, stall_timeout=30)
    group = int(result.stderr_tail.split()[0])
    time.sleep(0.3)
    assert group_states(group) <= {"Z"}  # gone, or dead and waiting for an init that does not reap


def group_states(group: int) -> set[str]:
    states = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:
            states.add(fields[0])
    return states


def test_runs_niced() -> None:
    code = "import os, sys; sys.stderr.write(str(os.nice(0)))"
    result = runner.run([sys.executable, "-c", code], nice=7, timeout=30, stall_timeout=30)
    assert result.ok and int(result.stderr_tail) == min(19, os.nice(0) + 7)


def test_stderr_is_bounded() -> None:
    code = "import sys\nfor i in range(200000): sys.stderr.write('x' * 99 + '\\n')"
    result = runner.run([sys.executable, "-c", code], nice=0, timeout=60, stall_timeout=60)
    assert result.ok and len(result.stderr_tail) <= runner.STDERR_KEEP_BYTES


def test_encode_timeout_is_a_clear_failure(ffmpeg: str, lavfi_clip: Clip, probe_ok: Probe, tmp_path: Path) -> None:
    src = lavfi_clip("clip.mp4", seconds=20, size="640x480", audio=False)
    dst = tmp_path / "out.mp4"
    with pytest.raises(EncodeFailed, match="time limit"):
        compress(ffmpeg, src, dst, probe_ok(src), CompressParams(codec="h265", preset="veryslow"), threads=1,
                 nice=10, timeout=1.0, stall_timeout=30, on_progress=lambda _p: None)  # fmt: skip
    assert not dst.exists() and not list(tmp_path.glob(".konvrt-encode-*"))


def test_progress_moves_and_never_sticks_at_zero_without_a_header_duration(
    ffmpeg: str, real: Callable[[str], Path], probe_ok: Probe, tmp_path: Path
) -> None:
    src = real("no_duration.webm")
    info = probe_ok(src)
    assert info.duration_estimated and info.duration == pytest.approx(4.9, abs=0.2)
    seen: list[int] = []
    compress(ffmpeg, src, tmp_path / "o.mp4", info, CompressParams(preset="ultrafast", allow_larger=True),
             threads=1, nice=10, timeout=60, stall_timeout=30, on_progress=seen.append)  # fmt: skip
    assert seen == sorted(set(seen)) and seen[-1] == 99 and len(seen) >= 2


def test_estimated_duration_without_header(real: Callable[[str], Path], probe_ok: Probe) -> None:
    info = probe_ok(real("annex-b-avc.mkv"))
    assert info.duration_estimated and info.duration and info.duration > 30
    assert dataclasses.asdict(info) == MediaInfo.from_dict(info.to_dict()).to_dict()
