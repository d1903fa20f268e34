"""(MediaInfo, CompressParams) -> the FFmpeg argv that compresses one upload to MP4 (PURE, golden-tested).

No IO here: `runner.py` runs what this returns, `encode.py` decides which passes to run.
"""

from __future__ import annotations

from pathlib import Path

from konvrt.media.params import CompressParams, aac_kbps
from konvrt.media.probe import DEMUXERS, PROTOCOLS, MediaInfo

DEFAULT_PRESET = {"h264": "medium", "h265": "fast", "av1": "faster"}
# SVT-AV1 counts presets 0 (slowest) .. 13 (fastest); x264's names spread over the useful middle.
SVT_PRESETS = {
    "ultrafast": 12, "superfast": 11, "veryfast": 10, "faster": 9, "fast": 8,
    "medium": 7, "slow": 6, "slower": 5, "veryslow": 4,
}  # fmt: skip
# `quality` is on x264's CRF scale. x265's docs say its CRF 28 looks like x264's 23, and SVT-AV1's
# default CRF 35 is its counterpart of x264's 23, so the same number looks about the same in every codec.
CRF_OFFSET = {"h264": 0, "h265": 5, "av1": 12}
CRF_MAX = {"h264": 51, "h265": 51, "av1": 63}
# The smallest side each encoder accepts (x265: "Image size is too small (8x8)"; SVT-AV1 fails to
# allocate packets for 2x2); yuv420p itself needs 2.
MIN_SIDE = {"h264": 2, "h265": 16, "av1": 8}
# The sample rates AAC-LC in MP4 is defined for; anything else is resampled to 48 kHz.
AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000})
# zscale's names for the colour tags PyAV reports, to convert HDR input explicitly (zscale refuses to
# guess: "no path between colorspaces" when a tag is missing).
_Z_MATRIX = {"bt2020nc": "2020_ncl", "bt2020c": "2020_cl", "bt709": "709", "smpte170m": "170m", "bt470bg": "470bg"}
_Z_PRIMARIES = {"bt2020": "2020", "bt709": "709", "smpte432": "smpte432", "smpte431": "smpte431"}


def build_argv(
    ffmpeg: str,
    src: Path,
    dst: Path,
    info: MediaInfo,
    params: CompressParams,
    *,
    threads: int,
    pass_no: int | None = None,
    passlog: Path | None = None,
    video_bitrate_kbps: int | None = None,
    audio_bitrate_kbps: int | None = None,
) -> list[str]:
    """The whole command for one pass. `pass_no` 1 analyses only (no audio, no output file)."""
    analysis_pass = pass_no == 1
    argv = [
        ffmpeg,
        *("-nostdin", "-hide_banner", "-loglevel", "error", "-nostats"),
        # key=value progress blocks on stdout (out_time_us) are what runner.py parses; stderr stays for errors.
        *("-progress", "pipe:1"),
        "-y",  # the destination is a temp name we chose; without -y, -nostdin turns "overwrite?" into a failure
        *input_args(src, threads),
        *("-map", f"0:{info.video_index}"),
    ]
    if info.has_audio and not analysis_pass:
        argv += ["-map", f"0:{info.audio_index}"]
    # Drop the upload's tags (GPS, device, creation time) and chapters; only the picture and sound go out.
    argv += ["-map_metadata", "-1", "-map_chapters", "-1"]
    argv += ["-vf", video_filter(info, params)]
    argv += video_codec_args(params, threads, pass_no=pass_no, passlog=passlog, video_bitrate_kbps=video_bitrate_kbps)
    # Keep each frame's own timestamp. MP4's default is constant frame rate, which duplicates and drops
    # frames of phone (VFR) video to fit the nominal rate: bigger files and no better sync.
    argv += ["-fps_mode", "vfr"]
    if analysis_pass:
        return argv + ["-an", "-f", "null", "-"]
    if info.has_audio:
        argv += audio_args(info, audio_bitrate_kbps)
    return argv + output_args(dst)


def input_args(src: Path, threads: int) -> list[str]:
    return [
        "-threads", str(threads),
        # An uploaded HLS/concat playlist renamed .mp4 makes FFmpeg open every file and URL it lists, and
        # -protocol_whitelist alone does not stop it; only a demuxer allow-list does (PeerTube does the same).
        "-format_whitelist", DEMUXERS,
        "-protocol_whitelist", PROTOCOLS,
        "-i", str(src),
    ]  # fmt: skip


def output_args(dst: Path) -> list[str]:
    return [
        # The mov muxer writes a tmcd track from a "timecode" tag (GoPro, broadcast); players do not need it.
        "-write_tmcd", "0",
        # moov before mdat so browsers start playing before the whole file has arrived.
        "-movflags", "+faststart",
        # Inputs with sparse or late audio otherwise abort with "Too many packets buffered" (trac #6375).
        "-max_muxing_queue_size", "4096",
        "-f", "mp4", str(dst),
    ]  # fmt: skip


def output_size(info: MediaInfo, params: CompressParams) -> tuple[int, int]:
    """Fit the displayed picture inside the box (turned to the video's orientation), never upscale, even sides.

    The one exception to "never upscale": a picture smaller than the encoder accepts (x265 refuses
    anything under 16x16, SVT-AV1 under 8x8) is enlarged to that minimum, keeping its aspect.
    """
    width, height = info.display_width, info.display_height
    box_w, box_h = params.max_width or width, params.max_height or height
    if (box_w > box_h) != (width > height) and box_w != box_h and width != height:
        box_w, box_h = box_h, box_w  # "1280x720" on a portrait phone video means at most 720x1280
    scale = min(1.0, box_w / width, box_h / height)
    smallest = MIN_SIDE[params.codec]
    scale = max(scale, smallest / width, smallest / height)
    limit_w, limit_h = max(box_w, smallest), max(box_h, smallest)
    return _even(width * scale, limit_w), _even(height * scale, limit_h)


def _even(size: float, limit: int) -> int:
    """Nearest even number, at least 2 (yuv420p needs even sides; a 1x1 input becomes 2x2), within the box."""
    value = max(2, round(size / 2) * 2)
    return value - 2 if value > limit and value > 2 else value


def video_filter(info: MediaInfo, params: CompressParams) -> str:
    """Rotation is not here: FFmpeg's autorotate turns the picture before this chain, once."""
    width, height = output_size(info, params)
    chain: list[str] = []
    if info.interlaced:
        # Only frames flagged interlaced are touched, so a mixed or wrongly flagged stream is not softened.
        chain.append("bwdif=mode=send_frame:deint=interlaced")
    if info.is_hdr:
        chain += _tonemap_chain(info, width, height)
    else:
        # out_range=tv: full-range phone video (yuvj420p) is squeezed to the limited range every player expects.
        chain.append(f"scale={width}:{height}:out_range=tv")
        chain.append("format=yuv420p")
    # The pixels are now square (the display aspect is in width/height); say so, or players stretch again.
    chain.append("setsar=1")
    return ",".join(chain)


def _tonemap_chain(info: MediaInfo, width: int, height: int) -> list[str]:
    """PQ/HLG 10-bit to SDR BT.709 8-bit: linearise, Hable tone-map, re-encode; else HDR looks washed out.

    The recipe is the one FFmpeg's tonemap filter documents (zscale to linear light, float RGB, tonemap).
    """
    matrix = _Z_MATRIX.get(info.color_matrix or "", "2020_ncl")
    primaries = _Z_PRIMARIES.get(info.color_primaries or "", "2020")
    range_in = "full" if info.full_range else "limited"
    return [
        f"zscale=w={width}:h={height}:tin={info.color_transfer}:min={matrix}:pin={primaries}:rin={range_in}"
        ":t=linear:npl=100",
        "format=gbrpf32le",
        "zscale=p=709",
        "tonemap=tonemap=hable:desat=0",
        "zscale=t=709:m=709:r=limited",
        "format=yuv420p",
    ]


def video_codec_args(
    params: CompressParams,
    threads: int,
    *,
    pass_no: int | None = None,
    passlog: Path | None = None,
    video_bitrate_kbps: int | None = None,
) -> list[str]:
    preset = params.preset or DEFAULT_PRESET[params.codec]
    if params.codec == "h264":
        args = ["-c:v", "libx264", "-preset", preset]
    elif params.codec == "h265":
        # hvc1 (not the default hev1) or Apple players refuse the file; x265 logs to stderr on its own
        # unless told not to, and sizes its thread pool from all cores unless given one.
        x265 = f"log-level=error:pools={threads}"
        args = ["-c:v", "libx265", "-preset", preset, "-tag:v", "hvc1", "-x265-params", x265]
    else:
        args = ["-c:v", "libsvtav1", "-preset", str(SVT_PRESETS[preset])]
    args += _rate_args(params, pass_no=pass_no, passlog=passlog, video_bitrate_kbps=video_bitrate_kbps)
    # Encoders default to one thread per core; workers x threads should equal the machine's cores.
    return args + ["-threads", str(threads), "-pix_fmt", "yuv420p"]


def _rate_args(
    params: CompressParams, *, pass_no: int | None, passlog: Path | None, video_bitrate_kbps: int | None
) -> list[str]:
    if params.method == "crf" and video_bitrate_kbps is None:
        return ["-crf", str(crf_for(params))]
    kbps = video_bitrate_kbps or params.bitrate_kbps
    if kbps is None:
        raise ValueError("a bitrate or size method needs a video bitrate")
    args = ["-b:v", f"{kbps}k"]
    if params.method == "bitrate" and params.codec != "av1":
        # VBV: peaks at most 1.5x the average over a 2 s buffer, so the stream plays over a link of that rate.
        args += ["-maxrate", f"{kbps * 3 // 2}k", "-bufsize", f"{kbps * 2}k"]
    if pass_no is not None and params.codec != "av1":
        if passlog is None:
            raise ValueError("two-pass encoding needs a pass log path")
        args += ["-pass", str(pass_no)]
        args += ["-x265-stats", str(passlog)] if params.codec == "h265" else ["-passlogfile", str(passlog)]
    return args


def crf_for(params: CompressParams) -> int:
    return min(CRF_MAX[params.codec], params.quality + CRF_OFFSET[params.codec])


def audio_args(info: MediaInfo, bitrate_kbps: int | None = None) -> list[str]:
    """AAC stays as it is unless a size target needs it smaller; everything else becomes AAC."""
    if info.audio_codec == "aac" and bitrate_kbps is None:
        return ["-c:a", "copy"]
    channels = info.audio_channels or 2
    args = ["-c:a", "aac", "-b:a", f"{bitrate_kbps or aac_kbps(channels)}k"]
    if channels > 2:
        args += ["-ac", "2"]  # a stereo downmix plays everywhere; 5.1 AAC does not in every browser
    if info.audio_sample_rate not in AAC_RATES:
        args += ["-ar", "48000"]
    return args


def remux_argv(ffmpeg: str, src: Path, dst: Path, info: MediaInfo, *, threads: int) -> list[str]:
    """The input's own streams copied into MP4 (allow_larger=false when the encode came out bigger)."""
    argv = [
        ffmpeg,
        *("-nostdin", "-hide_banner", "-loglevel", "error", "-nostats", "-progress", "pipe:1", "-y"),
        *input_args(src, threads),
        *("-map", f"0:{info.video_index}", "-c:v", "copy"),
    ]
    if info.video_codec == "hevc":
        argv += ["-tag:v", "hvc1"]  # see video_codec_args: Apple players need hvc1
    if info.has_audio:
        argv += ["-map", f"0:{info.audio_index}", *audio_args(info)]
    return argv + ["-map_metadata", "-1", "-map_chapters", "-1", *output_args(dst)]
