"""method=size accuracy: every real video in ../shared/testdata/real/video at three targets each.

    python -m bench.size_targets [--codec h264] [--skip long_4k_av1.mp4]

Targets are 25 %, 50 % and 75 % of the input's size. A target below the smallest sensible size is
refused at submit (a 400, as the API does) and counted apart; every other one is encoded with
Konvrt's own `compress()` and must come out at or under its target. Prints each result, the share at
or under the target (must be 100 %) and the median fill (aim >= 93 %).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from konvrt.config import Settings
from konvrt.errors import KonvrtError
from konvrt.media.encode import compress
from konvrt.media.params import CompressParams, check_feasible
from konvrt.media.probe import probe

SHARES = (0.25, 0.50, 0.75)
# A 1.1 MB file that decodes to 6 minutes of 4K: two passes at three targets is over an hour on 2 cores.
SLOW = ("long_4k_av1.mp4",)


def _videos() -> Path:
    here = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "real" / "video"
    return here if here.is_dir() else Path("/work/shared/testdata/real/video")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codec", default="h264")
    parser.add_argument("--skip", nargs="*", default=list(SLOW))
    args = parser.parse_args()
    settings = Settings()
    fills, over, refused, unreadable = [], [], 0, []
    print(f"{'video':<36} {'target':>10} {'output':>10} {'fill':>6} {'s':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for src in sorted(_videos().iterdir()):
            if src.name in args.skip:
                print(f"{src.name:<36} skipped (--skip)")
                continue
            try:
                info = probe(src, max_duration=settings.max_duration_seconds, max_pixels=settings.max_video_pixels)
            except KonvrtError as exc:
                unreadable.append(src.name)
                print(f"{src.name:<36} refused at submit: {exc.message}")
                continue
            for share in SHARES:
                target = int(src.stat().st_size * share)
                params = CompressParams(codec=args.codec, method="size", target_bytes=target)  # type: ignore[arg-type]
                try:
                    check_feasible(params, info)
                except KonvrtError:
                    refused += 1
                    print(f"{src.name:<36} {target:>10} refused at submit (below the smallest sensible size)")
                    continue
                dst = Path(tmp) / f"{src.stem}-{share}.mp4"
                start = time.perf_counter()
                try:
                    compress(settings.ffmpeg_exe, src, dst, info, params, threads=settings.threads_per_encode(),
                             nice=0, timeout=3600, stall_timeout=120, on_progress=lambda _: None)  # fmt: skip
                except KonvrtError as exc:
                    print(f"{src.name:<36} {target:>10} job failed: {exc.message}")
                    over.append(src.name)
                    continue
                size = dst.stat().st_size
                fill = size / target
                (over if size > target else fills).append(fill if size <= target else src.name)
                print(f"{src.name:<36} {target:>10} {size:>10} {100 * fill:5.1f}% {time.perf_counter() - start:6.1f}")
    encoded = len(fills) + len(over)
    print(f"\n{encoded} encodes ({args.codec}); {refused} targets refused at submit; unreadable: {unreadable}")
    if encoded:
        print(f"at or under the target: {100 * len(fills) / encoded:.1f} %  (must be 100 %)")
    if fills:
        print(f"fill: median {100 * statistics.median(fills):.1f} %, lowest {100 * min(fills):.1f} %  (aim >= 93 %)")
    return 0 if not over else 1


if __name__ == "__main__":
    sys.exit(main())
