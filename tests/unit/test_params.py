"""parse_compress_params and check_feasible: every field, its default, its 400 naming the field."""

from __future__ import annotations

import dataclasses

import pytest

from konvrt.errors import InvalidField
from konvrt.media.params import CompressParams, check_feasible, parse_compress_params, smallest_target_bytes
from konvrt.media.probe import MediaInfo


def media(**overrides: object) -> MediaInfo:
    base = MediaInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2", duration=60.0, duration_estimated=False, video_duration=None,
        size_bytes=50_000_000,
        video_index=0, video_codec="h264", width=1920, height=1080, display_width=1920, display_height=1080,
        rotation=0, sar_num=1, sar_den=1, pix_fmt="yuv420p", bit_depth=8, color_transfer="bt709",
        color_primaries="bt709", color_matrix="bt709", full_range=False, interlaced=False, fps=30.0,
        video_bitrate=6_000_000, has_audio=True, audio_index=1, audio_codec="aac", audio_channels=2,
        audio_sample_rate=48000, audio_bitrate=128_000,
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def test_defaults() -> None:
    assert parse_compress_params({}) == CompressParams(codec="h264", method="crf", quality=23)


def test_webhook_and_file_fields_are_ignored() -> None:
    assert parse_compress_params({"webhook_url": "x", "file": "y"}) == CompressParams()


@pytest.mark.parametrize(("raw", "codec"), [("h264", "h264"), ("H265", "h265"), ("hevc", "h265"), (" av1 ", "av1")])
def test_codec(raw: str, codec: str) -> None:
    assert parse_compress_params({"codec": raw}).codec == codec


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"codec": "vp9"}, "codec"),
        ({"quality": "17"}, "quality"),
        ({"quality": "52"}, "quality"),
        ({"quality": "23.5"}, "quality"),
        ({"quality": "high"}, "quality"),
        ({"method": "fast"}, "method"),
        ({"method": "bitrate"}, "bitrate"),
        ({"method": "size"}, "target_size"),
        ({"method": "bitrate", "bitrate": "lots"}, "bitrate"),
        ({"method": "bitrate", "bitrate": "10"}, "bitrate"),
        ({"method": "size", "target_size": "25 parsecs"}, "target_size"),
        ({"method": "size", "target_size": "12"}, "target_size"),
        ({"resolution": "720p"}, "resolution"),
        ({"resolution": "0x720"}, "resolution"),
        ({"resolution": "99999x720"}, "resolution"),
        ({"preset": "ludicrous"}, "preset"),
        ({"allow_larger": "maybe"}, "allow_larger"),
    ],
)
def test_invalid_fields_name_the_field(form: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidField) as caught:
        parse_compress_params(form)
    assert caught.value.field == field
    assert field in caught.value.message
    assert caught.value.message.endswith(".")


def test_quality_bounds_are_inclusive() -> None:
    assert parse_compress_params({"quality": "18"}).quality == 18
    assert parse_compress_params({"quality": "51"}).quality == 51


@pytest.mark.parametrize(("raw", "kbps"), [("2500k", 2500), ("2.5M", 2500), ("2500", 2500), ("800 kbps", 800)])
def test_bitrate_forms(raw: str, kbps: int) -> None:
    assert parse_compress_params({"method": "bitrate", "bitrate": raw}).bitrate_kbps == kbps


@pytest.mark.parametrize(
    ("raw", "size"),
    [("25MB", 25_000_000), ("8MiB", 8 * 1024 * 1024), ("1.5GB", 1_500_000_000), ("123456", 123456), ("500kB", 500_000)],
)
def test_target_size_forms(raw: str, size: int) -> None:
    assert parse_compress_params({"method": "size", "target_size": raw}).target_bytes == size


def test_a_bitrate_or_target_size_alone_names_the_method() -> None:
    assert parse_compress_params({"target_size": "8MB"}).method == "size"
    assert parse_compress_params({"bitrate": "2M"}).method == "bitrate"
    assert parse_compress_params({}).method == "crf"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"bitrate": "2M", "target_size": "8MB"}, "method"),
        ({"method": "crf", "target_size": "8MB"}, "target_size"),
        ({"method": "size", "target_size": "8MB", "bitrate": "2M"}, "bitrate"),
        ({"method": "bitrate", "bitrate": "2M", "target_size": "8MB"}, "target_size"),
    ],
)
def test_a_field_for_another_method_is_never_dropped_in_silence(form: dict[str, str], field: str) -> None:
    with pytest.raises(InvalidField) as info:
        parse_compress_params(form)
    assert info.value.field == field


def test_resolution_and_preset_and_allow_larger() -> None:
    params = parse_compress_params({"resolution": "1280x720", "preset": "Fast", "allow_larger": "true"})
    assert (params.max_width, params.max_height, params.preset, params.allow_larger) == (1280, 720, "fast", True)
    assert parse_compress_params({"allow_larger": "false"}).allow_larger is False


def test_dict_round_trip() -> None:
    params = CompressParams(codec="av1", method="size", target_bytes=8_000_000, max_width=640, max_height=360)
    assert CompressParams.from_dict(params.to_dict()) == params
    assert CompressParams.from_dict({**params.to_dict(), "unknown_later_field": 1}) == params


def test_target_below_what_audio_needs_is_refused_with_the_smallest_size() -> None:
    info = media(duration=600.0)
    params = parse_compress_params({"method": "size", "target_size": "1MB"})
    with pytest.raises(InvalidField) as caught:
        check_feasible(params, info)
    assert caught.value.field == "target_size"
    assert str(smallest_target_bytes(info)) in caught.value.message


def test_sensible_target_is_feasible() -> None:
    check_feasible(parse_compress_params({"method": "size", "target_size": "25MB"}), media())
    check_feasible(parse_compress_params({}), media(duration=None))


@pytest.mark.parametrize(
    ("field", "value"),
    [("quality", "٢٣"), ("bitrate", "٥٠٠k"), ("target_size", "٨MB"), ("resolution", "١٢٨٠x٧٢٠")],
)
def test_numbers_are_ascii_digits_only(field: str, value: str) -> None:
    """Python reads Arabic-Indic digits as numbers; a form field that means a number should not."""
    form = {field: value, **({"method": "size"} if field == "target_size" else {})}
    with pytest.raises(InvalidField) as info:
        parse_compress_params(form)
    assert info.value.field == field
