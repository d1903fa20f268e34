"""Job overhead: wall time from the 202 to `completed`, against raw FFmpeg with the same arguments.

    .venv/bin/python -m bench.video_jobs [--seconds 20] [--runs 3] [--codecs h264 h265 av1]

The clip is 720p with film-like noise (a flat test pattern would encode unrealistically fast).
Raw FFmpeg runs the exact argv Konvrt builds, under the same `nice` and thread count.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench._server import Server, konvrt_server
from konvrt.config import Settings
from konvrt.media.ffmpeg_args import build_argv
from konvrt.media.params import Codec, CompressParams
from konvrt.media.probe import probe
from konvrt.media.runner import niced

# Four polls a second: the figure's resolution is 0.25 s on runs of 15 s and more. Polling 20 times a
# second (the first version) was itself a load that an encode using both cores felt: a real client
# polls every few seconds (the seed's example: 3 s).
POLL_SECONDS = 0.25


def make_clip(path: Path, seconds: int, ffmpeg: str) -> None:
    subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc2=size=1280x720:rate=30:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:duration={seconds}",
            "-vf",
            "noise=alls=12:allf=t",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            "-c:a",
            "aac",
            str(path),
        ],
        check=True,
    )


def measure(server: Server, clip: Path, work: Path, codec: Codec, runs: int, settings: Settings) -> tuple[float, float]:
    """Median seconds of (raw ffmpeg, Konvrt's 202 -> completed) for `codec`, alternating run by run."""
    info = probe(clip, max_duration=settings.max_duration_seconds, max_pixels=settings.max_video_pixels)
    params = CompressParams(codec=codec)
    argv = build_argv(settings.ffmpeg_exe, clip, work / "raw.mp4", info, params, threads=settings.threads_per_encode())
    raw, konvrt = [], []
    with server.client() as client:
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run(
                niced(argv, settings.ffmpeg_nice), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            raw.append(time.perf_counter() - start)

            with clip.open("rb") as f:
                res = client.post("/api/v1/compress", files={"file": f}, data={"codec": codec})
            start = time.perf_counter()
            job_id = res.json()["job_id"]
            while (status := client.get(f"/api/v1/status/{job_id}").json()["status"]) not in ("completed", "failed"):
                time.sleep(POLL_SECONDS)
            assert status == "completed", job_id
            konvrt.append(time.perf_counter() - start)
    return statistics.median(raw), statistics.median(konvrt)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--codecs", nargs="*", default=["h264", "h265", "av1"])
    args = parser.parse_args()
    settings = Settings(workers=1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        make_clip(clip, args.seconds, settings.ffmpeg_exe)
        with konvrt_server(work / "data", workers="1") as server:
            results = {codec: measure(server, clip, work, codec, args.runs, settings) for codec in args.codecs}
    print(f"{args.seconds} s 720p clip, crf 23, default presets, {args.runs} runs each (medians)")
    for codec, (r, k) in results.items():
        print(
            f"{codec:>5}: raw ffmpeg {r:7.2f} s  konvrt 202->completed {k:7.2f} s  overhead {100 * (k / r - 1):+5.1f} %"
            "  (target: at most +5 %)"
        )


if __name__ == "__main__":
    main()
