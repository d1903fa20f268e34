"""The files people really upload (issue 6): rotation, odd sizes, 10-bit/HDR, VFR, odd streams, containers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from konvrt.errors import EncodeFailed, UnreadableMedia
from konvrt.media.encode import NOTE_LARGER, NOTE_REMUXED
from konvrt.media.probe import MediaInfo
from tests.media.conftest import Encoded
from tests.media.lavfi import luma_spread, stream_ends

Real = Callable[[str], Path]
Probe = Callable[[Path], MediaInfo]
Encode = Callable[..., Encoded]
Clip = Callable[..., Path]


def only_streams(probe_ok: Probe, path: Path) -> list[str]:
    import av

    with av.open(str(path)) as container:
        return sorted(s.type for s in container.streams)


@pytest.mark.parametrize(
    ("name", "box", "expected"),
    [
        ("portrait_4k60.mp4", "640x360", (360, 640)),  # -90 matrix, stored landscape: shown portrait, box turned
        ("fire2.mp4", None, (1280, 720)),  # stored upside down (180)
        ("h265_with_metadata_track.mp4", "1280x720", (720, 1280)),  # video is stream #2, rotated, full range
    ],
)
def test_rotation_applied_once(
    real: Real, probe_ok: Probe, encode: Encode, name: str, box: str | None, expected: tuple[int, int]
) -> None:
    fields = {"max_width": int(box.split("x")[0]), "max_height": int(box.split("x")[1])} if box else {}
    out = probe_ok(encode(real(name), allow_larger=True, **fields).path)
    assert (out.width, out.height, out.rotation) == (*expected, 0)


def test_rotated_picture_is_upright(real: Real, probe_ok: Probe, encode: Encode, tmp_path: Path) -> None:
    """fire2 is stored upside down: the stove's glow is at the bottom of the stored frame, so after the
    180-degree turn the bright half must be the top one."""
    import av

    out = encode(real("fire2.mp4"), allow_larger=True).path
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0)).reformat(format="gray")
    with av.open(str(real("fire2.mp4"))) as container:
        stored = next(container.decode(video=0)).reformat(format="gray")

    def top_minus_bottom(f: object) -> float:
        plane = f.planes[0]  # type: ignore[attr-defined]
        data, w, h = bytes(plane), f.width, f.height  # type: ignore[attr-defined]
        top = sum(data[y * plane.line_size + x] for y in range(h // 2) for x in range(0, w, 8))
        bottom = sum(data[y * plane.line_size + x] for y in range(h // 2, h) for x in range(0, w, 8))
        return float(top - bottom)

    assert (top_minus_bottom(frame) > 0) != (top_minus_bottom(stored) > 0)


@pytest.mark.parametrize("codec", ["h264", "h265", "av1"])
def test_one_pixel_video(real: Real, probe_ok: Probe, encode: Encode, codec: str) -> None:
    out = probe_ok(encode(real("bitmap.mp4"), codec=codec, allow_larger=True).path)
    assert out.width == out.height and out.width % 2 == 0 and out.width >= 2
    assert out.duration == pytest.approx(5.0, abs=0.1)


@pytest.mark.parametrize(("name", "expected"), [("bear-vp9-odd-dimensions.webm", (160, 120)),
                                                ("bt601-525_480_interlaced_bff.ts", (852, 480))])  # fmt: skip
def test_odd_and_anamorphic_sizes_become_even_square_pixels(
    real: Real, probe_ok: Probe, encode: Encode, name: str, expected: tuple[int, int]
) -> None:
    out = probe_ok(encode(real(name), allow_larger=True).path)
    assert (out.width, out.height, out.sar_num, out.sar_den) == (*expected, 1, 1)


def test_interlaced_dvd_is_deinterlaced_and_ac3_becomes_aac(real: Real, probe_ok: Probe, encode: Encode) -> None:
    out = probe_ok(encode(real("bt601-525_480_interlaced_bff.ts"), max_width=426, max_height=240).path)
    assert not out.interlaced and out.audio_codec == "aac"
    assert out.duration == pytest.approx(10.0, abs=0.2)


@pytest.mark.parametrize(
    ("name", "box"),
    [("hdr10-av1.mp4", (360, 640)), ("dolbyVision-hdr.MOV", None), ("sample_edit_list.mp4", (270, 480))],
)
def test_hdr_to_8bit_sdr_is_tone_mapped(
    real: Real, probe_ok: Probe, encode: Encode, name: str, box: tuple[int, int] | None
) -> None:
    """PQ (HDR10) and HLG (iPhone Dolby Vision) become 8-bit BT.709 through Hable tone mapping."""
    fields = {"max_width": box[0], "max_height": box[1]} if box else {}
    out_path = encode(real(name), allow_larger=True, **fields).path
    out = probe_ok(out_path)
    assert (out.pix_fmt, out.bit_depth, out.color_transfer, out.color_primaries) == ("yuv420p", 8, "bt709", "bt709")
    mean, spread = luma_spread(out_path)
    assert 20 < mean < 200 and spread > 100  # a real picture, not a washed-out grey


@pytest.mark.parametrize("name", ["roadtrip-vp92-10bit.webm", "prores_frame.mov"])
def test_10_and_12_bit_sdr_to_8_bit(real: Real, probe_ok: Probe, encode: Encode, name: str) -> None:
    out = probe_ok(encode(real(name), allow_larger=True).path)
    assert (out.pix_fmt, out.bit_depth) == ("yuv420p", 8)


@pytest.mark.parametrize("name", ["fire2.mp4", "sample_shorter_audio.mp4", "sample_sef_slow_motion.mp4"])
def test_variable_frame_rate_keeps_audio_in_sync(real: Real, probe_ok: Probe, encode: Encode, name: str) -> None:
    """The gap between the video's and the audio's end moves by less than one frame."""
    src = real(name)
    info = probe_ok(src)
    frame = 1 / (info.fps or 30)
    before, after = stream_ends(src), stream_ends(encode(src, allow_larger=True).path)
    assert abs((after["video"] - after["audio"]) - (before["video"] - before["audio"])) < frame


def test_no_audio_track_gives_no_audio_track(real: Real, probe_ok: Probe, encode: Encode) -> None:
    out = encode(real("roadtrip-vp92-10bit.webm"))
    assert only_streams(probe_ok, out.path) == ["video"]


def test_audio_only_is_refused(real: Real, probe_ok: Probe) -> None:
    with pytest.raises(UnreadableMedia, match="no video stream"):
        probe_ok(real("multiple-aac-tracks.mp4"))


def test_keeps_the_default_of_several_audio_tracks(lavfi_clip: Clip, probe_ok: Probe, encode: Encode) -> None:
    """Track 1 is 48 kHz, track 2 22.05 kHz and marked default: the 22.05 kHz one is kept."""
    src = lavfi_clip(
        "two.mkv",
        seconds=1,
        extra=["-map", "0:v", "-map", "1:a", "-map", "1:a", "-ar:a:1", "22050",
               "-disposition:a:0", "0", "-disposition:a:1", "default"],
    )  # fmt: skip
    info = probe_ok(src)
    assert info.audio_index == 2
    out = probe_ok(encode(src, allow_larger=True).path)
    assert out.audio_sample_rate == 22050


@pytest.mark.parametrize(
    "name",
    ["sample_MKV_VobSub_PGS.mkv", "karma.mp4", "dolbyVision-hdr.MOV", "no-aud.ts", "h265_with_metadata_track.mp4"],
)
def test_subtitles_data_and_timecode_tracks_are_dropped(real: Real, probe_ok: Probe, encode: Encode, name: str) -> None:
    fields = {"max_width": 320, "max_height": 320} if name in ("karma.mp4", "no-aud.ts") else {}
    out = encode(real(name), allow_larger=True, **fields)
    kinds = only_streams(probe_ok, out.path)
    assert kinds in (["video"], ["audio", "video"])
    assert b"tmcd" not in out.path.read_bytes()


def test_cover_art_and_attachments_are_dropped(lavfi_clip: Clip, tmp_path: Path, probe_ok: Probe, encode: Encode,
                                               ffmpeg: str) -> None:  # fmt: skip
    import subprocess

    cover = tmp_path / "cover.png"
    subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "color=red:size=64x64",
                    "-frames:v", "1", str(cover)], check=True)  # fmt: skip
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n")
    plain = lavfi_clip("plain.mp4", seconds=1)
    with_art = tmp_path / "art.mp4"
    subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(plain), "-i", str(cover), "-i", str(srt),
                    "-map", "0", "-map", "1", "-map", "2", "-c", "copy", "-c:s", "mov_text",
                    "-disposition:v:1", "attached_pic", str(with_art)], check=True)  # fmt: skip
    mkv = tmp_path / "attach.mkv"
    subprocess.run([ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(plain), "-i", str(srt), "-map", "0",
                    "-map", "1", "-c", "copy", "-attach", str(cover), "-metadata:s:t", "mimetype=image/png",
                    str(mkv)], check=True)  # fmt: skip
    for src in (with_art, mkv):
        assert only_streams(probe_ok, encode(src, allow_larger=True).path) == ["audio", "video"]


@pytest.mark.parametrize(
    ("name", "video", "audio", "extra"),
    [
        ("in.mkv", "libx264", "libopus", []),
        ("in.mov", "libx264", "pcm_s16le", []),
        ("in.webm", "libvpx-vp9", "libopus", ["-deadline", "realtime", "-cpu-used", "8"]),
        ("in.avi", "mpeg4", "libmp3lame", []),
        ("in.ts", "mpeg2video", "mp2", []),
        ("in.gif", "gif", None, []),
        ("in.flv", "flv", "libmp3lame", []),
    ],
)
def test_container_inputs(
    lavfi_clip: Clip, probe_ok: Probe, encode: Encode, name: str, video: str, audio: str | None, extra: list[str]
) -> None:
    pix = "pal8" if video == "gif" else "yuv420p"
    src = lavfi_clip(name, seconds=1, size="160x120", video_codec=video, audio=audio is not None,
                     audio_codec=audio or "aac", pix_fmt=pix, extra=extra)  # fmt: skip
    out = probe_ok(encode(src, allow_larger=True).path)
    assert (out.video_codec, out.width, out.height) == ("h264", 160, 120)
    assert out.has_audio == (audio is not None) and out.audio_codec in (None, "aac")
    assert out.duration == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(
    "name",
    [
        "sowt-with-video.mov", "bbb_176x144_128kbps_15fps_h263.3gp", "transparent.webm", "water_180_mvhevc_5frames.mov",
        "no_duration.webm", pytest.param("8k24fps_300ms.mp4", marks=pytest.mark.slow), "annex-b-avc.mkv",
    ],
)  # fmt: skip
def test_more_real_uploads(real: Real, probe_ok: Probe, encode: Encode, name: str) -> None:
    src = real(name)
    out = probe_ok(encode(src, allow_larger=True, max_width=640, max_height=640).path)
    assert out.video_codec == "h264" and out.pix_fmt == "yuv420p"
    assert out.duration == pytest.approx(probe_ok(src).duration, abs=0.2)


def test_truncated_upload_fails_clearly(lavfi_clip: Clip, probe_ok: Probe, encode: Encode) -> None:
    """moov first (so the probe passes) but half the media data gone: a clear failure, not half a video."""
    src = lavfi_clip("whole.mp4", seconds=4, extra=["-movflags", "+faststart"])
    cut = src.with_name("cut.mp4")
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(EncodeFailed, match="incomplete or truncated"):
        encode(cut)
    assert [p.name for p in cut.parent.iterdir() if p.name.startswith("encoded")] == []


def test_truncated_without_index_is_refused_at_probe(lavfi_clip: Clip, probe_ok: Probe) -> None:
    src = lavfi_clip("whole.mp4", seconds=2)  # moov at the end
    cut = src.with_name("cut.mp4")
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(UnreadableMedia, match="not a readable video"):
        probe_ok(cut)


def test_larger_output_delivers_the_input_remuxed(lavfi_clip: Clip, probe_ok: Probe, encode: Encode) -> None:
    src = lavfi_clip("tight.mp4", seconds=2, extra=["-crf", "45"])
    remuxed = encode(src, quality=18)
    assert remuxed.note == NOTE_REMUXED
    assert remuxed.path.stat().st_size <= src.stat().st_size * 1.05
    larger = encode(src, quality=18, allow_larger=True)
    assert larger.note == NOTE_LARGER and larger.path.stat().st_size > src.stat().st_size


def test_larger_output_in_another_codec_is_delivered_and_said(lavfi_clip: Clip, encode: Encode) -> None:
    src = lavfi_clip("tight.mp4", seconds=2, extra=["-crf", "45"])
    out = encode(src, codec="h265", quality=18)
    assert out.note == NOTE_LARGER
