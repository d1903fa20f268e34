"""Compress one probed upload to an MP4: choose the passes, run them, check the result, publish it.

Everything is written inside a private temp directory next to `dst` and renamed into place at the
end, so a failure (or a kill) never leaves a partial `dst` behind.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av

from konvrt.errors import EncodeFailed
from konvrt.media import failures, runner
from konvrt.media.ffmpeg_args import build_argv, remux_argv
from konvrt.media.params import (
    BITRATE_MAX_KBPS,
    MIN_AUDIO_KBPS,
    MUX_OVERHEAD_FLOOR,
    MUX_OVERHEAD_SHARE,
    CompressParams,
    audio_kbps_for_size,
)
from konvrt.media.probe import MediaInfo
from konvrt.media.progress import Monotonic, percent

SAME_CODEC = {"h264": "h264", "h265": "hevc", "av1": "av1"}
NOTE_REMUXED = "the encode was larger than the input; the input was delivered remuxed to MP4 (streams copied)"
NOTE_LARGER = "the output is larger than the input: the input was already more compressed than these settings"
TRUNCATED = "The video file is incomplete or truncated: it ends long before its stated duration; upload the whole file."
MISSED_TARGET = "The encode could not be brought under target_size; choose a larger target_size or a lower resolution."
# Share of the size budget aimed for: encoders land within a few % of a two-pass target, and a result
# over the target is re-encoded, never returned.
SIZE_AIM = 0.97
SIZE_ATTEMPTS = 4
# Below this share of the target, one more attempt asks for more bits.
UNDERFILL = 0.88
# Two-pass x264/x265; SVT-AV1 through FFmpeg has no two-pass, so it runs one VBR pass and is checked.
TWO_PASS_CODECS = ("h264", "h265")


@dataclass(frozen=True)
class EncodeResult:
    note: str | None = None


@dataclass
class _Job:
    ffmpeg: str
    src: Path
    info: MediaInfo
    params: CompressParams
    threads: int
    nice: int
    deadline: float
    stall_timeout: float
    report: Monotonic
    should_stop: Callable[[], bool]
    work: Path

    def run(self, argv: list[str], lo: int, hi: int) -> runner.RunResult:
        """Run one pass, mapping its position onto [lo, hi] of the job's progress; raise on failure."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise EncodeFailed(failures.TIMED_OUT)
        result = runner.run(
            argv,
            nice=self.nice,
            timeout=remaining,
            stall_timeout=self.stall_timeout,
            on_out_time=lambda t: self.report(percent(t, self.info.duration, lo=lo, hi=hi)),
            should_stop=self.should_stop,
        )
        if not result.ok:
            raise EncodeFailed(
                failures.explain(
                    result.returncode,
                    result.stderr_tail,
                    timed_out=result.timed_out,
                    stalled=result.stalled,
                    cancelled=result.cancelled,
                )
            )
        self.report(hi)
        return result


def compress(
    ffmpeg: str,
    src: Path,
    dst: Path,
    info: MediaInfo,
    params: CompressParams,
    *,
    threads: int,
    nice: int,
    timeout: float,
    stall_timeout: float,
    on_progress: Callable[[int], None],
    should_stop: Callable[[], bool] = lambda: False,
) -> EncodeResult:
    """Write `dst` (an MP4) or raise EncodeFailed with a public sentence; progress rises 0..99."""
    report = Monotonic(on_progress)
    report(0)
    work = Path(tempfile.mkdtemp(prefix=".konvrt-encode-", dir=dst.parent))
    try:
        job = _Job(ffmpeg, src, info, params, threads, nice, time.monotonic() + timeout, stall_timeout, report,
                   should_stop, work)  # fmt: skip
        out = _encode_to_size(job) if params.method == "size" else _encode_once(job)
        out, note = _smaller_of(job, out)
        os.replace(out, dst)
        return EncodeResult(note=note)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _encode_once(job: _Job) -> Path:
    out = job.work / "encode.mp4"
    job.run(build_argv(job.ffmpeg, job.src, out, job.info, job.params, threads=job.threads), 0, 99)
    _check_complete(job, out)
    return out


def _encode_to_size(job: _Job) -> Path:
    """Aim at SIZE_AIM of the target. A result over the target is encoded again lower and never returned;
    one far under it (an encoder that could not spend the bits it was given) is tried once higher."""
    target = job.params.target_bytes or 0
    video_kbps, audio_kbps = size_budget(job.info, target)
    spans = _size_spans(job.params.codec)
    best: Path | None = None
    raised = False
    for attempt in range(SIZE_ATTEMPTS):
        out = job.work / f"size-{attempt}.mp4"
        lo, hi = spans[min(attempt, len(spans) - 1)]
        _encode_at(job, out, video_kbps, audio_kbps, lo, hi)
        size = out.stat().st_size
        fill = size / target
        if size <= target:
            if best is None or size > best.stat().st_size:
                best = out
            if fill >= UNDERFILL or raised:
                return best
            raised = True  # once: the next attempt asks for more
        elif best is not None:
            return best  # the higher try overshot: the earlier, smaller result stands
        video_kbps = max(1, math.floor(video_kbps * SIZE_AIM / fill * (0.98 if size > target else 1.0)))
    if best is not None:
        return best
    raise EncodeFailed(MISSED_TARGET)


def _size_spans(codec: str) -> list[tuple[int, int]]:
    """Progress ranges per attempt: the first gets most of the bar, a retry the rest."""
    return [(0, 90), (90, 96), (96, 98), (98, 99)]


def _encode_at(job: _Job, out: Path, video_kbps: int, audio_kbps: int | None, lo: int, hi: int) -> None:
    ffmpeg, src, info, params, threads = job.ffmpeg, job.src, job.info, job.params, job.threads
    if params.codec not in TWO_PASS_CODECS:
        argv = build_argv(ffmpeg, src, out, info, params, threads=threads, video_bitrate_kbps=video_kbps,
                          audio_bitrate_kbps=audio_kbps)  # fmt: skip
        job.run(argv, lo, hi)
        _check_complete(job, out)
        return
    passlog = job.work / "passlog"
    mid = lo + (hi - lo) // 2
    first = build_argv(ffmpeg, src, out, info, params, threads=threads, pass_no=1, passlog=passlog,
                       video_bitrate_kbps=video_kbps)  # fmt: skip
    job.run(first, lo, mid)
    second = build_argv(ffmpeg, src, out, info, params, threads=threads, pass_no=2, passlog=passlog,
                        video_bitrate_kbps=video_kbps, audio_bitrate_kbps=audio_kbps)  # fmt: skip
    job.run(second, mid, hi)
    _check_complete(job, out)


def size_budget(info: MediaInfo, target_bytes: int) -> tuple[int, int | None]:
    """(video kbit/s, audio kbit/s to re-encode at or None to keep the audio) for a size target.

    Audio runs for the whole duration, the picture for its own (GoPro and phone files often end the
    video a second before the audio or data tracks), so each rate is spread over its own length.
    """
    duration = max(info.duration or 1.0, 0.04)
    video_duration = max(min(info.video_duration or duration, duration), 0.04)
    payload_kbits = (target_bytes / (1 + MUX_OVERHEAD_SHARE) - MUX_OVERHEAD_FLOOR) * 8 * SIZE_AIM / 1000
    total_kbps = max(1.0, payload_kbits / duration)
    audio_kbps: int | None = None
    spent_on_audio = audio_kbps_for_size(info)
    if spent_on_audio > total_kbps * 0.25:
        # The copied audio would eat the picture's share: re-encode it smaller (never below MIN_AUDIO_KBPS).
        audio_kbps = max(MIN_AUDIO_KBPS, min(spent_on_audio, math.floor(total_kbps * 0.2)))
        spent_on_audio = audio_kbps
    video_kbits = payload_kbits - spent_on_audio * duration
    video_kbps = min(BITRATE_MAX_KBPS, max(1, math.floor(video_kbits / video_duration)))
    return video_kbps, audio_kbps


def _check_complete(job: _Job, out: Path) -> None:
    """FFmpeg exits 0 on a file cut short after a good header: compare the output's length with the probe's."""
    duration = job.info.duration
    if not duration or job.info.duration_estimated:
        return
    if _duration_of(out) < duration * 0.8 - 0.5:
        raise EncodeFailed(TRUNCATED)


def _duration_of(path: Path) -> float:
    try:
        with av.open(str(path), options={"format_whitelist": "mov"}) as container:
            return (container.duration or 0) / av.time_base
    except av.FFmpegError:
        return 0.0


def _smaller_of(job: _Job, out: Path) -> tuple[Path, str | None]:
    """allow_larger=false: an encode bigger than an input already in the requested codec loses to a remux."""
    input_size = job.src.stat().st_size
    if out.stat().st_size <= input_size:
        return out, None
    if job.params.allow_larger or SAME_CODEC[job.params.codec] != job.info.video_codec:
        return out, NOTE_LARGER
    remuxed = job.work / "remux.mp4"
    try:
        job.run(remux_argv(job.ffmpeg, job.src, remuxed, job.info, threads=job.threads), 99, 99)
    except EncodeFailed:
        if job.should_stop():
            raise
        return out, NOTE_LARGER  # the input cannot be copied into MP4 as it is: the encode it is
    if remuxed.stat().st_size >= out.stat().st_size:
        return out, NOTE_LARGER
    return remuxed, NOTE_REMUXED
