"""What a person expects of a converter, each on a real file where one exists (else one made here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from konvrt.errors import BadRequest, PayloadTooLarge, UnreadableMedia, UnsupportedMedia
from konvrt.media.image import ImageResult, convert_image
from konvrt.media.image_params import parse_image_params
from tests.conftest import REAL_IMAGE

MAX_PIXELS = 100_000_000


def convert(path: Path, max_pixels: int = MAX_PIXELS, **fields: str) -> ImageResult:
    return convert_image(path, parse_image_params(fields), max_pixels=max_pixels)


def decode(result: ImageResult) -> pyvips.Image:
    if result.frames > 1:
        return pyvips.Image.new_from_buffer(result.data, "", n=-1)
    return pyvips.Image.new_from_buffer(result.data, "")


def close(pixel: list[float], expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


# ---------------------------------------------------------------- orientation

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def _upright() -> pyvips.Image:
    """60x40, a colour per quadrant: any rotation or mirror shows."""
    quads = [pyvips.Image.black(30, 20, bands=3) + list(c) for c in (RED, GREEN, BLUE, WHITE)]
    top = quads[0].join(quads[1], "horizontal")
    bottom = quads[2].join(quads[3], "horizontal")
    return top.join(bottom, "vertical").cast("uchar").copy(interpretation="srgb")


# What to do to the upright picture so that applying EXIF orientation N brings it back.
_STORE = {
    1: lambda im: im,
    2: lambda im: im.fliphor(),
    3: lambda im: im.rot180(),
    4: lambda im: im.flipver(),
    5: lambda im: im.rot90().fliphor(),
    6: lambda im: im.rot270(),
    7: lambda im: im.rot270().fliphor(),
    8: lambda im: im.rot90(),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright_and_is_not_left_behind(tmp_path: Path, orientation: int) -> None:
    stored = _STORE[orientation](_upright()).copy()
    stored.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    path = tmp_path / f"o{orientation}.jpg"
    stored.jpegsave(str(path), Q=95)
    assert pyvips.Image.new_from_file(str(path)).get("orientation") == orientation

    out = decode(convert(path, format="jpg"))
    assert (out.width, out.height) == (60, 40)
    for (x, y), colour in zip([(15, 10), (45, 10), (15, 30), (45, 30)], (RED, GREEN, BLUE, WHITE), strict=True):
        assert close(out(x, y), colour), (orientation, x, y, out(x, y))
    assert "orientation" not in out.get_fields()
    assert "exif-data" not in out.get_fields()


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("Portrait_6.jpg", (1200, 1800)),  # stored 1800x1200, EXIF 6
        ("Landscape_5.jpg", (1800, 1200)),  # stored 1200x1800, EXIF 5 (a mirrored one)
        ("arrow.heic", (3024, 4032)),  # irot already applied: EXIF 6 must not turn it again
        ("avif-orientation-6.avif", (3024, 4032)),  # pixels already upright
        ("rot1mir1.avif", (640, 427)),
    ],
)
def test_real_rotated_photos_come_out_upright(name: str, size: tuple[int, int]) -> None:
    result = convert(REAL_IMAGE / name, format="jpg", width=str(size[0] // 10))
    assert (result.width, result.height) == (size[0] // 10, round(size[1] / 10))


# ---------------------------------------------------------------- colour


def test_cmyk_with_a_press_profile_becomes_srgb() -> None:
    """FOGRA 0/100/100/0 is a press red; a missed CMYK import shows cyan or black instead."""
    out = decode(convert(REAL_IMAGE / "fogra-0-100-100-0.tif", format="png", width="50"))
    assert (out.bands, out.interpretation, out.format) == (3, "srgb", "uchar")
    r, g, b = out(25, 25)
    assert r > 180 and g < 80 and b < 80, (r, g, b)


def test_cmyk_jpeg_without_a_profile_is_not_inverted() -> None:
    """Adobe writes CMYK JPEGs inverted; the photo's mean must match a plain CMYK->RGB, not its negative."""
    path = REAL_IMAGE / "pil_sample_cmyk.jpg"
    out = decode(convert(path, format="png"))
    raw = pyvips.Image.new_from_file(str(path)).cast("float") / 255  # libvips keeps Adobe's inversion undone
    c, m, y, k = (raw[i] for i in range(4))
    naive = [((1 - band) * (1 - k) * 255).avg() for band in (c, m, y)]
    means = [out[i].avg() for i in range(3)]
    assert out.bands == 3
    assert all(abs(a - b) < 40 for a, b in zip(means, naive, strict=True)), (means, naive)


def test_an_embedded_display_p3_profile_is_honoured() -> None:
    """p3.png's red is P3 (241, 0, 0) raw; in sRGB it is as red as sRGB gets. Dropping the tag keeps 241."""
    out = decode(convert(REAL_IMAGE / "p3.png", format="png"))
    assert out(0, 0)[0] >= 250
    assert "icc-profile-data" not in out.get_fields()


def test_lab_tiff_becomes_srgb() -> None:
    out = decode(convert(REAL_IMAGE / "cielab-dagams.tiff", format="jpg", width="100"))
    assert (out.bands, out.interpretation, out.width) == (3, "srgb", 100)
    assert 20 < out.avg() < 235


def test_sixteen_bit_input_becomes_eight_bit_with_the_same_colours() -> None:
    path = REAL_IMAGE / "monkey16.png"
    source = pyvips.Image.new_from_file(str(path)).icc_transform("srgb", depth=8)
    for fmt in ("jpg", "png", "webp", "avif"):
        out = decode(convert(path, format=fmt))
        assert out.format == "uchar" and (out.width, out.height) == (149, 227)
        assert abs(out.avg() - source.avg()) < 6, fmt


def test_greyscale_and_bilevel_inputs_work(tmp_path: Path) -> None:
    grey = pyvips.Image.xyz(64, 48)[0].cast("uchar").copy(interpretation="b-w")
    grey.jpegsave(str(tmp_path / "grey.jpg"))
    for path in (tmp_path / "grey.jpg", REAL_IMAGE / "G31D_MULTI.TIF"):
        for fmt in ("jpg", "png", "webp", "avif", "gif", "tiff"):
            out = decode(convert(path, format=fmt, width="64"))
            assert out.width == 64


def test_palette_png_works(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    _upright().pngsave(str(path), palette=True)
    assert pyvips.Image.new_from_file(str(path)).get("palette") == 1
    out = decode(convert(path, format="webp"))
    assert (out.width, out.height) == (60, 40) and close(out(45, 30), WHITE)


# ---------------------------------------------------------------- alpha


def test_alpha_is_flattened_onto_white_for_jpg() -> None:
    """image-in-alpha.png hides other pictures under alpha 0: they must not show, nor turn black."""
    path = REAL_IMAGE / "image-in-alpha.png"
    source = pyvips.Image.new_from_file(str(path))
    transparent = (source[3] == 0).cast("uchar")
    out = decode(convert(path, format="jpg"))
    assert out.bands == 3
    # The mean of the output where the source is fully transparent is white.
    assert transparent.avg() > 0.05
    masked = out.extract_band(0).cast("float") * transparent
    assert masked.avg() / transparent.avg() > 250


@pytest.mark.parametrize("fmt", ["png", "webp", "avif", "tiff", "gif"])
def test_alpha_is_kept_where_the_format_has_it(fmt: str) -> None:
    out = decode(convert(REAL_IMAGE / "5_webp_a.webp", format=fmt))
    assert out.hasalpha()
    assert out[out.bands - 1].min() == 0


# ---------------------------------------------------------------- animation


@pytest.mark.parametrize("name", ["animated-loop-3.webp", "dispose-background.gif", "different_transparency.gif"])
@pytest.mark.parametrize("fmt", ["gif", "webp"])
def test_animations_stay_animated_with_their_frames_delays_and_loop(name: str, fmt: str) -> None:
    source = pyvips.Image.new_from_file(str(REAL_IMAGE / name), n=-1)
    result = convert(REAL_IMAGE / name, format=fmt, width="100")
    out = decode(result)
    assert out.get("n-pages") == source.get("n-pages") == result.frames > 1
    assert out.get("page-height") == result.height
    assert out.get("delay") == source.get("delay")
    assert out.get("loop") == source.get("loop")


@pytest.mark.parametrize("fmt", ["jpg", "png", "avif", "tiff"])
def test_other_targets_take_the_first_frame(fmt: str) -> None:
    result = convert(REAL_IMAGE / "animated-loop-3.webp", format=fmt)
    out = decode(result)
    assert (out.width, out.height, result.frames) == (370, 285, 1)


def test_an_animation_is_cropped_frame_by_frame() -> None:
    result = convert(REAL_IMAGE / "animated-loop-3.webp", format="webp", width="100", height="100")
    out = decode(result)
    assert (out.width, out.get("page-height"), out.get("n-pages")) == (100, 100, 10)


# ---------------------------------------------------------------- resize


@pytest.mark.parametrize(
    ("fit", "size"),
    [
        ("cover", (200, 200)),
        ("contain", (200, 200)),
        ("fill", (200, 200)),
        ("inside", (200, 154)),
        ("outside", (260, 200)),
    ],
)
def test_fit_modes(fit: str, size: tuple[int, int]) -> None:
    result = convert(REAL_IMAGE / "Landscape_9.jpg", format="png", width="200", height="200", fit=fit)
    out = decode(result)
    assert (out.width, out.height) == (result.width, result.height) == size


def test_contain_pads_transparent_where_alpha_exists_and_white_for_jpg() -> None:
    png = decode(convert(REAL_IMAGE / "Landscape_9.jpg", format="png", width="200", height="200", fit="contain"))
    assert png.hasalpha() and png(100, 0)[3] == 0 and png(100, 100)[3] == 255
    jpg = decode(convert(REAL_IMAGE / "Landscape_9.jpg", format="jpg", width="200", height="200", fit="contain"))
    assert close(jpg(100, 0), WHITE, 8)


def test_one_side_keeps_the_aspect_ratio_and_upscaling_is_allowed() -> None:
    assert convert(REAL_IMAGE / "Landscape_9.jpg", format="png", height="738").width == 960


# ---------------------------------------------------------------- metadata and quality


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp", "avif", "tiff"])
@pytest.mark.parametrize("name", ["ultraHDR.jpg", "Landscape_9.jpg"])
def test_metadata_is_stripped(name: str, fmt: str) -> None:
    """ultraHDR.jpg carries GPS; Landscape_9.jpg carries EXIF, IPTC, XMP and ICC at once."""
    result = convert(REAL_IMAGE / name, format=fmt, width="200")
    out = decode(result)
    fields = out.get_fields()
    for field in ("exif-data", "xmp-data", "iptc-data", "icc-profile-data", "jpeg-comment"):
        assert field not in fields, field
    assert "orientation" not in fields or out.get("orientation") == 1  # TIFF's loader always reports one
    for marker in (b"Exif\x00", b"GPS", b"xmpmeta", b"Photoshop 3.0", b"Canon", b"Google"):
        assert marker not in result.data, marker


@pytest.mark.parametrize("fmt", ["jpg", "webp", "avif"])
def test_quality_changes_the_size(fmt: str) -> None:
    low = convert(REAL_IMAGE / "Landscape_9.jpg", format=fmt, quality="30", width="320")
    high = convert(REAL_IMAGE / "Landscape_9.jpg", format=fmt, quality="90", width="320")
    assert len(low.data) < 0.6 * len(high.data), (len(low.data), len(high.data))


@pytest.mark.parametrize("fmt", ["png", "gif", "tiff"])
def test_lossless_and_palette_formats_ignore_quality(fmt: str) -> None:
    low = convert(REAL_IMAGE / "Landscape_9.jpg", format=fmt, quality="30", width="120")
    high = convert(REAL_IMAGE / "Landscape_9.jpg", format=fmt, quality="90", width="120")
    assert low.data == high.data


def test_content_type_and_magic_bytes() -> None:
    magic = {"jpg": b"\xff\xd8\xff", "png": b"\x89PNG", "gif": b"GIF8", "tiff": b"II*\x00"}
    for fmt, content_type in [
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("png", "image/png"),
        ("webp", "image/webp"),
        ("avif", "image/avif"),
        ("gif", "image/gif"),
        ("tiff", "image/tiff"),
    ]:
        result = convert(REAL_IMAGE / "Landscape_9.jpg", format=fmt, width="32")
        assert result.content_type == content_type
        assert result.data.startswith(magic.get(result.format, b"")), fmt
    assert convert(REAL_IMAGE / "Landscape_9.jpg", format="webp", width="32").data[8:12] == b"WEBP"
    assert b"ftypavif" in convert(REAL_IMAGE / "Landscape_9.jpg", format="avif", width="32").data[:16]


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("body", "suffix"),
    [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
            ".svg",
        ),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', ".png"),
        (b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n", ".pdf"),
        (b"BM" + b"\x00" * 60, ".bmp"),
        (b"just some text\n", ".jpg"),
        (b"P6\n2 2\n255\n" + b"\x00" * 12, ".ppm"),
    ],
)
def test_formats_spec_does_not_list_are_415(tmp_path: Path, body: bytes, suffix: str) -> None:
    path = tmp_path / f"upload{suffix}"
    path.write_bytes(body)
    with pytest.raises(UnsupportedMedia) as info:
        convert(path, format="png")
    assert info.value.status == 415


def test_a_vips_native_file_is_415(tmp_path: Path) -> None:
    """libvips' own formats (.v, csv, matrix) are loaders too; only SPEC's list may run."""
    path = tmp_path / "upload.v"
    _upright().vipssave(str(path))
    with pytest.raises(UnsupportedMedia):
        convert(path, format="png")


@pytest.mark.parametrize(
    "name",
    [
        "corrupt-header.jpg",
        "truncated_jpeg.jpg",
        "png-truncated.png",
        "gif.gif",
        "decompression_bomb.gif",
        "10ct_32bit_128.tiff",
        "monkey12.jpg",
        "empty.heic",
    ],
)
def test_corrupt_or_truncated_files_are_400_with_a_sentence(tmp_path: Path, name: str) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes((REAL_IMAGE / name).read_bytes())
    with pytest.raises(UnreadableMedia) as info:
        convert(path, format="webp")
    assert info.value.status == 400
    assert str(tmp_path) not in info.value.message
    assert info.value.message.endswith(".")


def test_a_truncated_copy_of_a_good_photo_is_400(tmp_path: Path) -> None:
    data = (REAL_IMAGE / "Landscape_9.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableMedia, match="premature end"):
        convert(path, format="png")


def test_output_too_large_is_400() -> None:
    with pytest.raises(BadRequest) as info:
        convert(REAL_IMAGE / "Landscape_9.jpg", format="png", width="16384", height="16384", fit="fill")
    assert info.value.status == 400 and info.value.code == "output_too_large"
    with pytest.raises(BadRequest, match="at most 16383"):
        convert(REAL_IMAGE / "Landscape_9.jpg", format="webp", width="16384")


def test_animated_frames_count_against_the_pixel_limit() -> None:
    path = REAL_IMAGE / "animated-loop-3.webp"
    budget = 370 * 285 * 5
    with pytest.raises(PayloadTooLarge, match="x 10 frames"):
        convert(path, max_pixels=budget, format="webp")
    assert convert(path, max_pixels=budget, format="png").frames == 1
