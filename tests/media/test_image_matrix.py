"""Every real image in the shared corpus to every target format: a clean answer each time, never a crash.

A file either converts (the output decodes, has the requested width, the upright aspect ratio and,
for gif/webp targets, every frame) or is refused with the 4xx its row below names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from konvrt.errors import KonvrtError, PayloadTooLarge, UnreadableMedia, UnsupportedMedia
from konvrt.media.image import convert_image
from konvrt.media.image_params import FORMATS, parse_image_params
from tests.conftest import REAL_IMAGE

WIDTH = 48

REFUSED: dict[str, type[KonvrtError]] = {
    "17000x17000.avif": PayloadTooLarge,  # 289 MP header
    "200MP.heic": PayloadTooLarge,  # libheif's own security limit (822 items)
    "65536-uint32-limit.png": PayloadTooLarge,  # 4.3 Gpx in 522 KB
    "giant-image.jpg": PayloadTooLarge,  # 280 MP, real
    "vp8l-16383x16383.webp": PayloadTooLarge,  # 268 MP in 10 KB
    "warning.jpg": PayloadTooLarge,  # SOF claims 65025x65025
    "10ct_32bit_128.tiff": UnreadableMedia,  # no PhotometricInterpretation
    "corrupt-header.jpg": UnreadableMedia,  # no SOF, no scan
    "decompression_bomb.gif": UnreadableMedia,  # 65535x66601 screen, no frame data
    "empty.heic": UnreadableMedia,  # 0 bytes
    "gif.gif": UnreadableMedia,  # header only
    "monkey12.jpg": UnreadableMedia,  # 12-bit JPEG: libjpeg-turbo here reads 8-bit only
    "png-truncated.png": UnreadableMedia,  # no IEND: refused as truncated
    "truncated_jpeg.jpg": UnreadableMedia,  # cut before EOI: refused rather than half grey
    "star.avifs": UnsupportedMedia,  # an AVIF *sequence*: libvips' heifload does not recognise it
}

IMAGES = sorted(p.name for p in REAL_IMAGE.iterdir() if p.name not in ("SHA256SUMS",))


def test_the_table_names_only_real_files() -> None:
    assert set(REFUSED) <= set(IMAGES)
    assert len(IMAGES) >= 49


def _upright_size(path: Path) -> tuple[int, int]:
    header = pyvips.Image.new_from_file(str(path))
    if "orientation" in header.get_fields() and header.get("orientation") in (5, 6, 7, 8):
        return header.height, header.width
    return header.width, header.height


@pytest.mark.parametrize("name", IMAGES)
def test_every_real_image_to_every_format(name: str) -> None:
    path = REAL_IMAGE / name
    for fmt in FORMATS:
        params = parse_image_params({"format": fmt, "width": str(WIDTH)})
        if name in REFUSED:
            with pytest.raises(REFUSED[name]):
                convert_image(path, params, max_pixels=100_000_000)
            continue
        result = convert_image(path, params, max_pixels=100_000_000)
        out = pyvips.Image.new_from_buffer(result.data, "", **({"n": -1} if result.frames > 1 else {}))
        width, height = _upright_size(path)
        assert out.width == result.width == WIDTH, (name, fmt)
        page_height = out.get("page-height") if result.frames > 1 else out.height
        assert abs(page_height - height * WIDTH / width) <= 1, (name, fmt, page_height)
        if result.frames > 1:
            assert fmt in ("gif", "webp") and out.get("n-pages") == result.frames
