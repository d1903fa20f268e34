"""POST /api/v1/convert against the Sharp anchor (../shared/bench/sharp-server), same run, same machine.

Both servers are started the same way (a fresh process each, default settings, loopback) and driven
by ../shared/bench/convert_load.py with the same image, parameters and concurrency, Sharp first.
Prints, per scenario and concurrency: requests/s, p95 latency and peak RSS of each, and our ratios.
Targets (issue 3): rps >= 1.0x Sharp, p95 <= Sharp, peak RSS <= 1.5x Sharp.

    python -m bench.convert            # the whole grid, a few minutes on 2 cores
    python -m bench.convert --quick    # fewer requests
Needs node and npm (the Sharp server is installed into a temporary copy on first use).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench._server import _free_port, konvrt_server


def _shared() -> Path:
    for candidate in (os.environ.get("KONVRT_SHARED", ""), Path(__file__).parents[2] / "shared", "/work/shared"):
        if candidate and (Path(candidate) / "bench" / "convert_load.py").is_file():
            return Path(candidate)
    sys.exit("../shared/bench not found: set KONVRT_SHARED to the shared folder")


SHARED = _shared()
INPUTS = SHARED / "bench" / "inputs"


@dataclass(frozen=True)
class Scenario:
    name: str
    image: str
    format: str
    quality: int
    width: int | None
    requests: dict[int, int]  # concurrency -> requests measured


SCENARIOS = [
    Scenario("JPEG 12 MP -> WebP q80 w1024", "photo_12mp.jpg", "webp", 80, 1024, {1: 30, 2: 40, 8: 48}),
    Scenario("JPEG 12 MP -> AVIF q50 w1024", "photo_12mp.jpg", "avif", 50, 1024, {1: 8, 2: 10, 8: 16}),
    Scenario("PNG 1600x1200 alpha -> JPEG q80", "alpha_1600x1200.png", "jpg", 80, None, {1: 30, 2: 40, 8: 48}),
]
CONCURRENCY = (1, 2, 8)


def sharp_dir() -> Path:
    """A writable copy of the Sharp server with its node_modules, reused while package-lock.json is unchanged."""
    source = SHARED / "bench" / "sharp-server"
    digest = hashlib.sha256((source / "package-lock.json").read_bytes()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"konvrt-sharp-server-{digest}"
    if not (target / "node_modules" / "sharp").is_dir():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        for path in target.rglob("*"):
            path.chmod(path.stat().st_mode | 0o200)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund"], cwd=target, check=True, capture_output=True)
    return target


@contextmanager
def sharp_server() -> Iterator[tuple[str, int]]:
    port = _free_port()
    proc = subprocess.Popen(
        ["node", "server.js"],
        cwd=sharp_dir(),
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url + "/healthz", proc)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url)
            return
        except httpx.ConnectError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from None
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def load(url: str, pid: int, scenario: Scenario, concurrency: int, requests: int, bearer: str | None) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        argv = [
            sys.executable,
            str(SHARED / "bench" / "convert_load.py"),
            "--url",
            url,
            "--image",
            str(INPUTS / scenario.image),
            "--format",
            scenario.format,
            "--quality",
            str(scenario.quality),
            "-n",
            str(requests),
            "-c",
            str(concurrency),
            "--server-pid",
            str(pid),
            "--pid-tree",
            "--reset-hwm",
            "--json-out",
            out.name,
            "--quiet",
        ]
        if scenario.width:
            argv += ["--width", str(scenario.width)]
        if bearer:
            argv += ["--bearer", bearer]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        record: dict = json.loads(Path(out.name).read_text().splitlines()[-1])
    return record


def _peak_mb(record: dict) -> float:
    server = record.get("server", {})
    return float(max(server.get("vmhwm_mb") or 0, server.get("peak_rss_mb_sampled") or 0)) or 1.0


def _cpu_ms(record: dict) -> float:
    return float(record.get("server", {}).get("cpu_ms_per_req") or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of the requests")
    parser.add_argument("--json-out", help="append every record here")
    args = parser.parse_args()
    scale = 3 if args.quick else 1
    rows = []
    with (
        tempfile.TemporaryDirectory() as data,
        sharp_server() as (sharp_url, sharp_pid),
        konvrt_server(Path(data), workers="0") as ours,
    ):
        for scenario in SCENARIOS:
            for c in CONCURRENCY:
                n = max(c, scenario.requests[c] // scale)
                theirs = load(sharp_url, sharp_pid, scenario, c, n, None)
                mine = load(ours.url, ours.proc.pid, scenario, c, n, ours.key)
                rows.append((scenario, c, theirs, mine))
                _print_row(scenario, c, theirs, mine)
                if args.json_out:
                    with open(args.json_out, "a") as f:
                        for label, rec in (("sharp", theirs), ("konvrt", mine)):
                            f.write(json.dumps({**rec, "label": label}) + "\n")
    misses = [r for r in rows if not _meets(r[2], r[3])]
    print(f"\n{len(rows) - len(misses)} of {len(rows)} cells meet rps >= 1.0x, p95 <= 1.0x, RSS <= 1.5x of Sharp")
    return 0


def _meets(theirs: dict, mine: dict) -> bool:
    return (
        mine["rps"] >= theirs["rps"]
        and mine["lat_ms"]["p95"] <= theirs["lat_ms"]["p95"]
        and _peak_mb(mine) <= 1.5 * _peak_mb(theirs)
        and mine["errors"] == 0
    )


def _print_row(scenario: Scenario, c: int, theirs: dict, mine: dict) -> None:
    if c == CONCURRENCY[0]:
        print(f"\n{scenario.name}")
        print(
            "   c |  rps sharp   ours ratio | p95 ms sharp   ours ratio | RSS MB sharp  ours ratio "
            "| CPU ms/req sharp  ours | errors | other load"
        )
    rps = mine["rps"] / theirs["rps"] if theirs["rps"] else float("inf")
    p95 = mine["lat_ms"]["p95"] / theirs["lat_ms"]["p95"]
    rss = _peak_mb(mine) / _peak_mb(theirs)
    cells = [
        f"{c:>4}",
        f"{theirs['rps']:>10.2f} {mine['rps']:>6.2f} {rps:>5.2f}",
        f"{theirs['lat_ms']['p95']:>12.0f} {mine['lat_ms']['p95']:>6.0f} {p95:>5.2f}",
        f"{_peak_mb(theirs):>12.0f} {_peak_mb(mine):>5.0f} {rss:>5.2f}",
        f"{_cpu_ms(theirs):>16.0f} {_cpu_ms(mine):>5.0f}",
        f"{theirs['errors']}/{mine['errors']}",
        f"{theirs.get('other_cores_busy')}/{mine.get('other_cores_busy')}",
    ]
    print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    sys.exit(main())
