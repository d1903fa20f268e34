"""PURE: the image conversion's form fields, output formats and geometry. No libvips, no IO.

`parse_image_params` turns the form into `ImageParams` (or an `InvalidField` naming the field);
`plan_geometry` decides, from the source's upright size and the params, how big the output is and
how to get there, so limits are checked before a pixel is decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from konvrt.errors import BadRequest, InvalidField

Fit = Literal["cover", "contain", "fill", "inside", "outside"]
FITS: tuple[Fit, ...] = ("cover", "contain", "fill", "inside", "outside")

# Requested sides above this are refused; it is Sharp's and imgproxy's working ceiling, and WebP's
# own limit is 16383.
MAX_SIDE = 16384
DEFAULT_QUALITY = 80


@dataclass(frozen=True)
class OutputFormat:
    name: str
    content_type: str
    saver: str
    max_side: int
    alpha: bool
    animation: bool
    uses_quality: bool


FORMATS: dict[str, OutputFormat] = {
    "jpg": OutputFormat("jpg", "image/jpeg", "jpegsave_buffer", 65535, False, False, True),
    "png": OutputFormat("png", "image/png", "pngsave_buffer", 65535, True, False, False),
    "webp": OutputFormat("webp", "image/webp", "webpsave_buffer", 16383, True, True, True),
    "avif": OutputFormat("avif", "image/avif", "heifsave_buffer", 16384, True, False, True),
    "gif": OutputFormat("gif", "image/gif", "gifsave_buffer", 65535, True, True, False),
    "tiff": OutputFormat("tiff", "image/tiff", "tiffsave_buffer", 65535, True, False, False),
}
_ALIASES = {"jpeg": "jpg", "tif": "tiff"}
FORMAT_NAMES = "jpg, jpeg, png, webp, avif, gif or tiff"


@dataclass(frozen=True)
class ImageParams:
    format: str
    quality: int = DEFAULT_QUALITY
    width: int | None = None
    height: int | None = None
    fit: Fit | None = None

    @property
    def output(self) -> OutputFormat:
        return FORMATS[self.format]

    @property
    def effective_fit(self) -> Fit:
        """Sharp's rule: `cover` unless told otherwise; with one side given the aspect ratio is kept."""
        if self.width is None or self.height is None:
            return "inside"
        return self.fit or "cover"


def parse_image_params(form: Mapping[str, str]) -> ImageParams:
    return ImageParams(
        format=_parse_format(form.get("format")),
        quality=_parse_int(form, "quality", 1, 100) or DEFAULT_QUALITY,
        width=_parse_int(form, "width", 1, MAX_SIDE),
        height=_parse_int(form, "height", 1, MAX_SIDE),
        fit=_parse_fit(form.get("fit")),
    )


def _parse_format(raw: str | None) -> str:
    value = (raw or "").strip().lower()
    if not value:
        raise InvalidField("format", f"format is required: one of {FORMAT_NAMES}.")
    value = _ALIASES.get(value, value)
    if value not in FORMATS:
        raise InvalidField("format", f"format must be one of {FORMAT_NAMES}, not {raw!r}.")
    return value


def _parse_int(form: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise InvalidField(name, f"{name} must be a whole number from {low} to {high}, not {raw!r}.")
    value = int(raw)
    if not low <= value <= high:
        raise InvalidField(name, f"{name} must be from {low} to {high}, not {value}.")
    return value


def _parse_fit(raw: str | None) -> Fit | None:
    value = (raw or "").strip().lower()
    if not value:
        return None
    for fit in FITS:
        if value == fit:
            return fit
    raise InvalidField("fit", f"fit must be one of {', '.join(FITS)}, not {raw!r}.")


@dataclass(frozen=True)
class Geometry:
    """How to size one frame: scale into `scale_box` (thumbnail's box), then crop or pad to `width`x`height`.

    `scale_box` sides of None mean "unbounded"; `force` means ignore the aspect ratio (fit=fill).
    """

    width: int
    height: int
    scale_box: tuple[int | None, int | None] | None
    force: bool = False
    crop: bool = False
    pad: bool = False


def plan_geometry(src_width: int, src_height: int, params: ImageParams) -> Geometry:
    """The output frame size for an upright source frame of `src_width` x `src_height`."""
    w, h = params.width, params.height
    if w is None and h is None:
        return Geometry(src_width, src_height, None)
    if w is None or h is None:
        return _one_side(src_width, src_height, w, h)
    fit = params.effective_fit
    if fit == "fill":
        return Geometry(w, h, (w, h), force=True)
    scale_w, scale_h = w / src_width, h / src_height
    if fit in ("inside", "contain"):
        inner = _scaled(src_width, src_height, min(scale_w, scale_h))
        if fit == "inside":
            return Geometry(*inner, (w, h))
        return Geometry(w, h, (w, h), pad=inner != (w, h))
    # cover and outside: the smallest size that covers the box; cover then crops the overflow.
    box = (w, None) if scale_w >= scale_h else (None, h)
    outer = _scaled(src_width, src_height, max(scale_w, scale_h))
    if fit == "outside":
        return Geometry(*outer, box)
    return Geometry(w, h, box, crop=outer != (w, h))


def _one_side(src_width: int, src_height: int, w: int | None, h: int | None) -> Geometry:
    if w is not None:
        return Geometry(w, max(1, round(src_height * w / src_width)), (w, None))
    assert h is not None
    return Geometry(max(1, round(src_width * h / src_height)), h, (None, h))


def _scaled(width: int, height: int, scale: float) -> tuple[int, int]:
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_output_size(geometry: Geometry, frames: int, params: ImageParams, *, max_pixels: int) -> None:
    """Refuse an output too large to make, before any work: per-format sides and the pixel budget."""
    limit = params.output.max_side
    if geometry.width > limit or geometry.height > limit:
        raise BadRequest(
            f"The output would be {geometry.width}x{geometry.height}; {params.format} images may be at most "
            f"{limit} pixels on a side. Ask for a smaller width or height.",
            code="output_too_large",
        )
    if geometry.width * geometry.height * frames > max_pixels:
        raise BadRequest(
            f"The output would be {geometry.width}x{geometry.height}"
            f"{f' x {frames} frames' if frames > 1 else ''}, over the limit of {megapixels(max_pixels)} megapixels. "
            "Ask for a smaller width or height.",
            code="output_too_large",
        )


def megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:g}"
