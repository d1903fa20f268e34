"""Image conversion on libvips: one uploaded file in, the converted bytes out, our errors only.

The order matters for safety: detect the format from the bytes (415), read only the header and
refuse oversized images (413) and outputs (400), and only then decode, with shrink-on-load where
the format allows it. Every `pyvips.Error` is translated here; nothing above sees one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from konvrt.errors import PayloadTooLarge, UnreadableMedia, UnsupportedMedia
from konvrt.media.heic import load_hevc
from konvrt.media.image_params import Geometry, ImageParams, check_output_size, megapixels, plan_geometry
from konvrt.media.vips_setup import ALLOWED_LOADERS, init_vips

__all__ = ["ImageResult", "convert_image"]

log = logging.getLogger(__name__)

# libvips' VIPS_MAX_COORD: a thumbnail box side that never binds.
_UNBOUNDED = 10_000_000
_ANIMATED_LOADERS = ("VipsForeignLoadNsgif", "VipsForeignLoadWebp")
_INPUT_NAMES = "jpeg, png, webp, avif, heic/heif, gif or tiff"
_WHITE = 255.0


@dataclass(frozen=True)
class ImageResult:
    data: bytes
    content_type: str
    format: str
    width: int
    height: int
    frames: int = 1


@dataclass(frozen=True)
class _Source:
    loader: str
    width: int
    height: int
    frames: int
    has_profile: bool
    hevc: bool


def convert_image(path: Path, params: ImageParams, *, max_pixels: int) -> ImageResult:
    """Convert the image at `path`; raises UnsupportedMedia, UnreadableMedia, PayloadTooLarge or BadRequest."""
    filename = str(path)
    if filename.endswith("]"):
        raise ValueError("libvips would read the trailing [...] as load options")
    init_vips()  # idempotent: the loader allow-list must be in force whoever calls first
    source = _inspect(filename, params, max_pixels=max_pixels)
    geometry = plan_geometry(source.width, source.height, params)
    check_output_size(geometry, source.frames, params, max_pixels=max_pixels)
    try:
        image = _load_scaled(filename, source, geometry)
        image = _to_display_colour(image)
        image = _fit_frames(image, geometry.width, geometry.height, params, pad=geometry.pad)
        if not params.output.alpha and image.hasalpha():
            image = image.flatten(background=[_WHITE] * (image.bands - 1))
        data = _save(image, params)
    except pyvips.Error as exc:
        raise _unreadable(exc, filename) from exc
    return ImageResult(
        data=data,
        content_type=params.output.content_type,
        format=params.format,
        width=image.width,
        height=_page_height(image),
        frames=source.frames,
    )


def _inspect(filename: str, params: ImageParams, *, max_pixels: int) -> _Source:
    loader = _find_loader(filename)
    try:
        header = pyvips.Image.new_from_file(filename, fail_on="error")
        fields = set(header.get_fields())
    except pyvips.Error as exc:
        raise _unreadable(exc, filename) from exc
    width, height = header.width, header.height
    if "orientation" in fields and header.get("orientation") in (5, 6, 7, 8):
        width, height = height, width
    frames = 1
    if params.output.animation and loader.startswith(_ANIMATED_LOADERS) and "n-pages" in fields:
        frames = max(1, int(header.get("n-pages")))
    if width * height * frames > max_pixels:
        raise PayloadTooLarge(
            f"The image is {width}x{height}{f' x {frames} frames' if frames > 1 else ''}, over the limit of "
            f"{megapixels(max_pixels)} megapixels this service decodes.",
            code="too_many_pixels",
        )
    hevc = "heif-compression" in fields and header.get("heif-compression") == "hevc"
    return _Source(loader, width, height, frames, "icc-profile-data" in fields, hevc)


def _find_loader(filename: str) -> str:
    """The libvips loader the file's magic bytes select, if it is one we accept (else 415)."""
    found = pyvips.vips_lib.vips_foreign_find_load(filename.encode())
    if found == pyvips.ffi.NULL:
        # vips_foreign_find_load leaves "not a known file format" in libvips' error buffer.
        pyvips.vips_lib.vips_error_clear()
        if Path(filename).stat().st_size == 0:
            raise UnreadableMedia("The file is empty.", code="empty_file")
        raise UnsupportedMedia(f"This is not an image format we convert; send {_INPUT_NAMES}.")
    loader = str(pyvips.ffi.string(found).decode())
    if not loader.startswith(ALLOWED_LOADERS):
        raise UnsupportedMedia(f"This is not an image format we convert; send {_INPUT_NAMES}.")
    return loader


def _load_scaled(filename: str, source: _Source, geometry: Geometry) -> pyvips.Image:
    """Decode, upright and scaled; thumbnail picks shrink-on-load (jpeg, webp, heif) by itself."""
    box_w, box_h = geometry.scale_box or (_UNBOUNDED, _UNBOUNDED)
    options: dict[str, Any] = {
        "height": box_h or _UNBOUNDED,
        "size": "force" if geometry.force else ("down" if geometry.scale_box is None else "both"),
    }
    if source.has_profile:
        # Only with an embedded profile: converting an untagged (already sRGB) image through
        # lcms changes nothing and doubles the time of a 12 MP conversion.
        options["export_profile"] = "srgb"
    if source.hevc:
        return load_hevc(filename).thumbnail_image(box_w or _UNBOUNDED, **options)
    name = f"{filename}[n=-1]" if source.frames > 1 else filename
    return pyvips.Image.thumbnail(name, box_w or _UNBOUNDED, fail_on="error", **options)


def _to_display_colour(image: pyvips.Image) -> pyvips.Image:
    """8-bit sRGB (or 8-bit grey): Lab, CMYK, 16-bit and float inputs all end up here."""
    grey = image.interpretation in ("b-w", "grey16")
    target = "b-w" if grey else "srgb"
    if image.interpretation != target or image.format != "uchar":
        image = image.colourspace(target)
    if image.format != "uchar":
        image = image.cast("uchar")
    return image


def _fit_frames(image: pyvips.Image, width: int, height: int, params: ImageParams, *, pad: bool) -> pyvips.Image:
    """Crop (cover) or pad (contain) every frame to exactly `width` x `height`, when it is not already."""
    page_height = _page_height(image)
    if image.width == width and page_height == height:
        return image
    if pad and params.output.alpha and not image.hasalpha():
        image = image.addalpha()
    background = [0.0] * image.bands if params.output.alpha else [_WHITE] * image.bands
    pages = image.height // page_height
    frames = [
        _fit_one(image.crop(0, i * page_height, image.width, page_height), width, height, background)
        for i in range(pages)
    ]
    if pages == 1:
        return frames[0]
    joined = pyvips.Image.arrayjoin(frames, across=1).copy()
    joined.set_type(pyvips.GValue.gint_type, "page-height", height)
    return joined


def _fit_one(frame: pyvips.Image, width: int, height: int, background: list[float]) -> pyvips.Image:
    """Centre crop what overflows, centre pad what is short (padding also absorbs a pixel of rounding)."""
    if frame.width > width or frame.height > height:
        crop_w, crop_h = min(frame.width, width), min(frame.height, height)
        frame = frame.crop((frame.width - crop_w) // 2, (frame.height - crop_h) // 2, crop_w, crop_h)
    if frame.width < width or frame.height < height:
        frame = frame.gravity("centre", width, height, extend="background", background=background)
    return frame


def _page_height(image: pyvips.Image) -> int:
    if "page-height" in image.get_fields():
        page_height = int(image.get("page-height"))
        if 0 < page_height <= image.height and image.height % page_height == 0:
            return page_height
    return int(image.height)


def _save(image: pyvips.Image, params: ImageParams) -> bytes:
    fmt = params.output
    options: dict[str, Any] = {"keep": "none"}  # no EXIF, GPS, XMP, IPTC, comments or profile
    if fmt.name == "jpg":
        # Sharp's default too: Huffman tables fitted to the image, a few % smaller for free.
        options.update(Q=params.quality, optimize_coding=True)
    elif fmt.name == "webp":
        options.update(Q=params.quality)
    elif fmt.name == "avif":
        options.update(Q=params.quality, compression="av1", bitdepth=8)
    elif fmt.name == "tiff":
        # Lossless, like the archive and print workflows that ask for TIFF expect; quality is unused.
        options.update(compression="deflate", predictor="horizontal")
    data: bytes = getattr(image, fmt.saver)(**options)
    return data


_PATHS = re.compile(r'"?/[^"\s:]*"?:?\s*')
_PREFIX = re.compile(r"^(Vips\w+|vips\w*|\w+load|\w+save|heif|tiff2vips|gifload|webp2vips):\s*", re.IGNORECASE)


def _unreadable(exc: pyvips.Error, filename: str) -> UnreadableMedia | PayloadTooLarge:
    detail = _detail(exc, filename)
    log.info("image conversion failed: %s", exc)
    if "security limit" in detail.lower():
        return PayloadTooLarge("The image is too large or too complex to decode safely.", code="too_many_pixels")
    sentence = "The image could not be decoded: it is corrupt, truncated or uses a variant we cannot read"
    return UnreadableMedia(f"{sentence} ({detail})." if detail else f"{sentence}.", code="unreadable_image")


def _detail(exc: pyvips.Error, filename: str) -> str:
    """libvips' first specific complaint, without file paths or loader names, for the public sentence."""
    text = f"{exc.message}\n{exc.detail or ''}".replace(filename, "")
    for line in text.splitlines():
        line = _PREFIX.sub("", _PATHS.sub("", line.strip())).strip()
        if line and not line.lower().startswith("unable to call"):
            return line.rstrip(".")[:160]
    return ""
