"""Upload: the server's peak RSS while it receives a ~2 GiB upload, and throughput against `cp`.

    .venv/bin/python -m bench.upload [--mib 2047]

The body is sent by curl (so the client is not the bottleneck) to POST /api/v1/compress with
workers off; the file is random bytes, so the probe then refuses it with a 400 and deletes it —
the receive path is what is measured. `cp` copies the same file on the same disk.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench._server import konvrt_server


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=2047)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        work = Path(tmp)
        big = work / "big.bin"
        with big.open("wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(1 << 20))
        size = big.stat().st_size

        start = time.perf_counter()
        subprocess.run(["cp", str(big), str(work / "copy.bin")], check=True)
        os.sync()
        cp_seconds = time.perf_counter() - start
        (work / "copy.bin").unlink()

        with konvrt_server(work / "data", workers="0") as server:
            before = peak_rss_mib(server.proc.pid)
            start = time.perf_counter()
            out = subprocess.run(
                [
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-H",
                    f"Authorization: Bearer {server.key}",
                    "-F",
                    f"file=@{big}",
                    f"{server.url}/api/v1/compress",
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            up_seconds = time.perf_counter() - start
            peak = peak_rss_mib(server.proc.pid)
    mib = size / (1 << 20)
    print(f"{mib:.0f} MiB upload, answered {out.stdout} (random bytes: the probe refuses them after the upload)")
    print(f"server peak RSS:    {peak:7.1f} MiB (at start {before:.1f} MiB; target at most 150 MB)")
    print(f"cp:                 {mib / cp_seconds:7.1f} MiB/s")
    print(f"konvrt upload:      {mib / up_seconds:7.1f} MiB/s  = {cp_seconds / up_seconds:.2f} x cp (target >= 0.5)")


if __name__ == "__main__":
    main()
