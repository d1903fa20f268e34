"""The image form's rules and the resize geometry, as golden values (pure code, no libvips)."""

from __future__ import annotations

import pytest

from konvrt.errors import BadRequest, InvalidField
from konvrt.media.image_params import Geometry, ImageParams, check_output_size, parse_image_params, plan_geometry


def test_defaults_and_aliases() -> None:
    assert parse_image_params({"format": "JPEG"}) == ImageParams(format="jpg", quality=80)
    assert parse_image_params({"format": "tif"}).format == "tiff"
    params = parse_image_params({"format": "webp", "quality": "30", "width": "640", "height": "", "fit": "Contain"})
    assert params == ImageParams(format="webp", quality=30, width=640, height=None, fit="contain")


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({}, "format"),
        ({"format": "bmp"}, "format"),
        ({"format": "svg"}, "format"),
        ({"format": "png", "quality": "0"}, "quality"),
        ({"format": "png", "quality": "101"}, "quality"),
        ({"format": "png", "quality": "8.5"}, "quality"),
        ({"format": "png", "width": "-3"}, "width"),
        ({"format": "png", "width": "0"}, "width"),
        ({"format": "png", "height": "16385"}, "height"),
        ({"format": "png", "width": "١٢"}, "width"),
        ({"format": "png", "fit": "stretch"}, "fit"),
    ],
)
def test_a_wrong_field_is_named(form: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidField) as info:
        parse_image_params(form)
    assert info.value.field == field
    assert info.value.status == 400


def test_fit_defaults_to_cover_only_when_both_sides_are_given() -> None:
    assert ImageParams("png", width=10, height=10).effective_fit == "cover"
    assert ImageParams("png", width=10).effective_fit == "inside"
    assert ImageParams("png", width=10, fit="fill").effective_fit == "inside"


@pytest.mark.parametrize(
    ("width", "height", "fit", "expected"),
    [
        (None, None, None, Geometry(400, 300, None)),
        (200, None, None, Geometry(200, 150, (200, None))),
        (None, 30, None, Geometry(40, 30, (None, 30))),
        (200, 200, None, Geometry(200, 200, (None, 200), crop=True)),
        (200, 200, "cover", Geometry(200, 200, (None, 200), crop=True)),
        (200, 200, "contain", Geometry(200, 200, (200, 200), pad=True)),
        (200, 200, "fill", Geometry(200, 200, (200, 200), force=True)),
        (200, 200, "inside", Geometry(200, 150, (200, 200))),
        (200, 200, "outside", Geometry(267, 200, (None, 200))),
        (800, 100, "outside", Geometry(800, 600, (800, None))),
        (800, 600, "cover", Geometry(800, 600, (800, None))),
        (800, 600, "contain", Geometry(800, 600, (800, 600))),
    ],
)
def test_geometry_follows_sharps_fit_meanings(
    width: int | None, height: int | None, fit: str | None, expected: Geometry
) -> None:
    params = ImageParams("png", width=width, height=height, fit=fit)  # type: ignore[arg-type]
    assert plan_geometry(400, 300, params) == expected


def test_a_one_pixel_side_never_rounds_to_zero() -> None:
    assert plan_geometry(10000, 1, ImageParams("png", width=10)).height == 1


def test_outputs_past_the_format_limit_or_the_pixel_budget_are_refused() -> None:
    webp = ImageParams("webp", width=16384)
    with pytest.raises(BadRequest, match="at most 16383"):
        check_output_size(plan_geometry(100, 10, webp), 1, webp, max_pixels=10**9)
    fill = ImageParams("png", width=16000, height=16000, fit="fill")
    with pytest.raises(BadRequest, match="over the limit of 100 megapixels") as info:
        check_output_size(plan_geometry(10, 10, fill), 1, fill, max_pixels=100_000_000)
    assert info.value.code == "output_too_large"
    animated = ImageParams("gif", width=1000)
    with pytest.raises(BadRequest, match="x 200 frames"):
        check_output_size(plan_geometry(100, 100, animated), 200, animated, max_pixels=100_000_000)
    check_output_size(plan_geometry(100, 100, animated), 100, animated, max_pixels=100_000_000)
