"""Decompression bombs are refused from their header, before libvips allocates a pixel of them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import pyvips

from konvrt.errors import PayloadTooLarge
from konvrt.media.image import convert_image
from konvrt.media.image_params import parse_image_params
from tests.conftest import REAL_IMAGE

BOMBS = [
    "vp8l-16383x16383.webp",
    "65536-uint32-limit.png",
    "warning.jpg",
    "giant-image.jpg",
    "17000x17000.avif",
    "200MP.heic",
]


def _peak_rss_mb() -> float:
    match = re.search(r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert match
    return int(match.group(1)) / 1024


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
    except OSError:
        return False
    return True


@pytest.mark.parametrize("name", BOMBS)
@pytest.mark.parametrize("fmt", ["jpg", "webp"])
def test_bombs_are_413_fast_and_small(tmp_path: Path, name: str, fmt: str) -> None:
    path = tmp_path / "upload"
    path.write_bytes((REAL_IMAGE / name).read_bytes())
    measured = _reset_peak_rss()
    before = _peak_rss_mb()
    started = time.monotonic()
    with pytest.raises(PayloadTooLarge) as info:
        convert_image(path, parse_image_params({"format": fmt, "width": "100"}), max_pixels=100_000_000)
    assert info.value.status == 413
    assert time.monotonic() - started < 2
    if measured:
        assert _peak_rss_mb() - before < 64


def test_the_limit_is_a_setting(tmp_path: Path) -> None:
    """A 480x369 photo passes at 100 MP and is refused at 0.1 MP."""
    params = parse_image_params({"format": "png"})
    assert convert_image(REAL_IMAGE / "Landscape_9.jpg", params, max_pixels=100_000_000).width == 480
    with pytest.raises(PayloadTooLarge, match="480x369, over the limit of 0.1 megapixels"):
        convert_image(REAL_IMAGE / "Landscape_9.jpg", params, max_pixels=100_000)


def test_untrusted_and_unlisted_loaders_are_blocked() -> None:
    """After set-up, libvips itself refuses to pick a loader outside SPEC's list for any bytes."""
    convert_image(REAL_IMAGE / "Landscape_9.jpg", parse_image_params({"format": "png"}), max_pixels=10**8)
    with pytest.raises(pyvips.Error):
        pyvips.Image.new_from_buffer(b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "")
    with pytest.raises(pyvips.Error):
        pyvips.Image.svgload_buffer(b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>')
