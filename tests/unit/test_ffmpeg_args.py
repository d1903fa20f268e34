"""build_argv golden tests: the exact argv for the common case, and the rule behind each odd case."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from konvrt.media.ffmpeg_args import build_argv, output_size, remux_argv, video_filter
from konvrt.media.params import CompressParams
from konvrt.media.probe import DEMUXERS, MediaInfo

SRC, DST = Path("/w/in"), Path("/w/out.mp4")


def media(**overrides: object) -> MediaInfo:
    base = MediaInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2", duration=10.0, duration_estimated=False, video_duration=None,
        size_bytes=5_000_000,
        video_index=0, video_codec="h264", width=1920, height=1080, display_width=1920, display_height=1080,
        rotation=0, sar_num=1, sar_den=1, pix_fmt="yuv420p", bit_depth=8, color_transfer="bt709",
        color_primaries="bt709", color_matrix="bt709", full_range=False, interlaced=False, fps=30.0,
        video_bitrate=4_000_000, has_audio=True, audio_index=1, audio_codec="aac", audio_channels=2,
        audio_sample_rate=48000, audio_bitrate=128_000,
    )  # fmt: skip
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def argv(info: MediaInfo | None = None, **params: object) -> list[str]:
    return build_argv("ffmpeg", SRC, DST, info or media(), CompressParams(**params), threads=2)  # type: ignore[arg-type]


def opt(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_golden_h264_crf() -> None:
    assert argv() == [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y",
        "-threads", "2", "-format_whitelist", DEMUXERS, "-protocol_whitelist", "file", "-i", "/w/in",
        "-map", "0:0", "-map", "0:1", "-map_metadata", "-1", "-map_chapters", "-1",
        "-vf", "scale=1920:1080:out_range=tv,format=yuv420p,setsar=1",
        "-c:v", "libx264", "-preset", "medium", "-crf", "23", "-threads", "2", "-pix_fmt", "yuv420p",
        "-fps_mode", "vfr",
        "-c:a", "copy",
        "-write_tmcd", "0", "-movflags", "+faststart", "-max_muxing_queue_size", "4096", "-f", "mp4", "/w/out.mp4",
    ]  # fmt: skip


def test_golden_h265_and_av1() -> None:
    h265 = argv(codec="h265", quality=23, preset="veryfast")
    assert h265[h265.index("-c:v") : h265.index("-fps_mode")] == [
        "-c:v", "libx265", "-preset", "veryfast", "-tag:v", "hvc1", "-x265-params", "log-level=error:pools=2",
        "-crf", "28", "-threads", "2", "-pix_fmt", "yuv420p",
    ]  # fmt: skip
    av1 = argv(codec="av1", preset="medium")
    assert av1[av1.index("-c:v") : av1.index("-fps_mode")] == [
        "-c:v", "libsvtav1", "-preset", "7", "-crf", "35", "-threads", "2", "-pix_fmt", "yuv420p",
    ]  # fmt: skip


def test_maps_the_chosen_streams_only() -> None:
    args = argv(media(video_index=2, audio_index=1))
    assert [args[i + 1] for i, a in enumerate(args) if a == "-map"] == ["0:2", "0:1"]
    silent = argv(media(has_audio=False, audio_index=None, audio_codec=None))
    assert [silent[i + 1] for i, a in enumerate(silent) if a == "-map"] == ["0:0"]
    assert "-c:a" not in silent


def test_audio_becomes_aac_unless_it_is_aac() -> None:
    args = argv(media(audio_codec="pcm_s16le", audio_channels=6, audio_sample_rate=192000))
    assert args[args.index("-c:a") : args.index("-write_tmcd")] == [
        "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("display", "box", "expected"),
    [
        ((1920, 1080), None, (1920, 1080)),
        ((1920, 1080), (1280, 720), (1280, 720)),
        ((1080, 1920), (1280, 720), (720, 1280)),  # the box turns with a portrait video
        ((640, 360), (1280, 720), (640, 360)),  # never upscale
        ((161, 121), None, (160, 120)),  # odd sides become even
        ((853, 480), (640, 640), (640, 360)),
        ((1, 1), None, (2, 2)),  # the smallest picture yuv420p can hold
        ((3840, 2160), (100, 100), (100, 56)),
        ((854, 480), (427, 240), (426, 240)),  # never past the box when rounding to even
    ],
)
def test_output_size(display: tuple[int, int], box: tuple[int, int] | None, expected: tuple[int, int]) -> None:
    info = media(display_width=display[0], display_height=display[1])
    params = CompressParams(max_width=box[0], max_height=box[1]) if box else CompressParams()
    assert output_size(info, params) == expected


def test_hdr_is_tone_mapped_to_8bit_bt709() -> None:
    info = media(color_transfer="smpte2084", color_primaries="bt2020", color_matrix="bt2020nc", bit_depth=10)
    chain = video_filter(info, CompressParams())
    assert chain.startswith("zscale=w=1920:h=1080:tin=smpte2084:min=2020_ncl:pin=2020:rin=limited:t=linear")
    assert "tonemap=tonemap=hable" in chain and chain.endswith("format=yuv420p,setsar=1")


def test_interlaced_is_deinterlaced_first() -> None:
    assert video_filter(media(interlaced=True), CompressParams()).startswith("bwdif=")


def test_bitrate_has_vbv_bounds() -> None:
    args = argv(method="bitrate", bitrate_kbps=2500)
    assert (opt(args, "-b:v"), opt(args, "-maxrate"), opt(args, "-bufsize")) == ("2500k", "3750k", "5000k")
    assert "-crf" not in args


def test_two_pass_arguments() -> None:
    params = CompressParams(method="size", target_bytes=8_000_000)
    first = build_argv("ffmpeg", SRC, DST, media(), params, threads=2, pass_no=1, passlog=Path("/w/log"),
                       video_bitrate_kbps=900)  # fmt: skip
    assert first[-4:] == ["-an", "-f", "null", "-"]
    assert (opt(first, "-pass"), opt(first, "-passlogfile"), opt(first, "-b:v")) == ("1", "/w/log", "900k")
    h265 = dataclasses.replace(params, codec="h265")
    second = build_argv("ffmpeg", SRC, DST, media(), h265, threads=2, pass_no=2, passlog=Path("/w/log"),
                        video_bitrate_kbps=900, audio_bitrate_kbps=64)  # fmt: skip
    assert (opt(second, "-pass"), opt(second, "-x265-stats")) == ("2", "/w/log")
    assert opt(second, "-b:a") == "64k" and second[-1] == "/w/out.mp4"


def test_remux_copies_and_tags_hevc() -> None:
    args = remux_argv("ffmpeg", SRC, DST, media(video_codec="hevc"), threads=2)
    assert opt(args, "-c:v") == "copy" and opt(args, "-tag:v") == "hvc1" and opt(args, "-c:a") == "copy"
    assert opt(args, "-format_whitelist") == DEMUXERS
