"""Probe an uploaded video with PyAV into a typed `MediaInfo`, refusing what we will not encode.

Only demuxers on `DEMUXERS` may open the file: an uploaded HLS or concat playlist renamed to .mp4
would otherwise make the demuxer open the files and URLs it names (DESIGN.md, "Running FFmpeg and
libvips safely"). `-protocol_whitelist file` alone does not stop that; the demuxer allow-list does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from konvrt.errors import BadRequest, UnreadableMedia

# Demuxer names (as libavformat spells them; one entry matches a comma-named demuxer such as
# "mov,mp4,m4a,3gp,3g2,mj2"). Deliberately absent: hls, dash, concat, ffconcat, tee, image2 and every
# other demuxer that opens further files or URLs named inside the upload.
DEMUXERS = "mov,matroska,webm,avi,mpegts,mpeg,flv,gif,ogg,asf,mxf,ivf,h264,hevc,m4v"
# Nested opens (none expected with the demuxers above) may only touch local files.
PROTOCOLS = "file"

_NOT_VIDEO = (
    "The file is not a readable video (it may be incomplete, or not a video at all); "
    "upload an MP4, MOV, MKV, WebM, AVI, MPEG-TS or GIF file."
)

_TRANSFERS = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    11: "iec61966-2-4", 13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67",
}  # fmt: skip
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 11: "smpte431",
              12: "smpte432"}  # fmt: skip
_MATRICES = {0: "gbr", 1: "bt709", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020nc", 10: "bt2020c"}
_FIELD_ORDERS = {1: "progressive", 2: "tt", 3: "bb", 4: "tb", 5: "bt"}
HDR_TRANSFERS = ("smpte2084", "arib-std-b67")


@dataclass(frozen=True)
class MediaInfo:
    format_name: str
    duration: float | None  # seconds; estimated from packets when the header has none
    duration_estimated: bool
    video_duration: float | None  # the picture alone; shorter than `duration` when audio or data run on
    size_bytes: int
    video_index: int  # absolute stream index, for `-map 0:<index>`
    video_codec: str
    width: int  # coded
    height: int
    display_width: int  # as a viewer sees it: non-square pixels applied, then rotation
    display_height: int
    rotation: int  # degrees the player turns the picture clockwise: 0, 90, 180 or 270
    sar_num: int
    sar_den: int
    pix_fmt: str
    bit_depth: int
    color_transfer: str | None
    color_primaries: str | None
    color_matrix: str | None
    full_range: bool
    interlaced: bool
    fps: float | None
    video_bitrate: int | None  # bit/s, when the container says
    has_audio: bool
    audio_index: int | None
    audio_codec: str | None
    audio_channels: int | None
    audio_sample_rate: int | None
    audio_bitrate: int | None  # bit/s

    @property
    def is_hdr(self) -> bool:
        return self.color_transfer in HDR_TRANSFERS

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MediaInfo:
        return cls(**{f.name: d[f.name] for f in fields(cls)})


def probe(path: Path, *, max_duration: float, max_pixels: int) -> MediaInfo:
    """Open `path` through the demuxer allow-list and describe its video; raise on what we refuse."""
    try:
        container = av.open(str(path), options={"format_whitelist": DEMUXERS, "protocol_whitelist": PROTOCOLS})
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise UnreadableMedia(_NOT_VIDEO) from exc
    if not isinstance(container, av.container.InputContainer):
        container.close()
        raise UnreadableMedia(_NOT_VIDEO)
    with container:
        return _describe(container, path, max_duration=max_duration, max_pixels=max_pixels)


def _describe(container: Any, path: Path, *, max_duration: float, max_pixels: int) -> MediaInfo:
    video = _pick_video(container)
    cc = video.codec_context
    if cc.width * cc.height > max_pixels:
        raise BadRequest(
            f"The video is {cc.width}x{cc.height}, larger than this server accepts"
            f" ({max_pixels / 1e6:.1f} megapixels per frame); scale it down first."
        )
    frame = _first_frame(container, video)
    audio = _pick_audio(container)
    duration, estimated = _duration(container, video, path)
    if duration is not None and duration > max_duration:
        raise BadRequest(
            f"The video lasts {_clock(duration)}, longer than this server accepts ({_clock(max_duration)}); "
            "trim it or split it first."
        )
    sar = _sample_aspect(video)
    rotation = round(-frame.rotation) % 360 if frame.rotation else 0
    display_w, display_h = _display_size(frame.width, frame.height, sar, rotation)
    pix_fmt = frame.format.name
    acc = audio.codec_context if audio is not None else None
    return MediaInfo(
        format_name=container.format.name,
        duration=duration,
        duration_estimated=estimated,
        video_duration=_stream_duration(video) or duration,
        size_bytes=path.stat().st_size,
        video_index=video.index,
        video_codec=_codec_name(cc.name),
        width=frame.width,
        height=frame.height,
        display_width=display_w,
        display_height=display_h,
        rotation=rotation,
        sar_num=sar.numerator,
        sar_den=sar.denominator,
        pix_fmt=pix_fmt,
        bit_depth=max((c.bits for c in frame.format.components), default=8),
        color_transfer=_TRANSFERS.get(int(frame.color_trc)),
        color_primaries=_PRIMARIES.get(int(frame.color_primaries)),
        color_matrix=_MATRICES.get(int(frame.colorspace)),
        full_range=int(frame.color_range) == 2 or pix_fmt.startswith("yuvj"),
        interlaced=_interlaced(frame, cc),
        fps=_fps(video),
        video_bitrate=cc.bit_rate or None,
        has_audio=audio is not None,
        audio_index=audio.index if audio is not None else None,
        audio_codec=acc.name if acc is not None else None,
        audio_channels=acc.channels if acc is not None else None,
        audio_sample_rate=acc.sample_rate if acc is not None else None,
        audio_bitrate=(acc.bit_rate or None) if acc is not None else None,
    )


def _pick_video(container: Any) -> Any:
    """The default video stream that is a real picture (not cover art), else the first real one."""
    candidates = [
        s
        for s in container.streams.video
        if s.codec_context is not None
        and s.codec_context.width
        and not (s.disposition & av.stream.Disposition.attached_pic)
    ]
    if not candidates:
        raise UnreadableMedia("The input has no video stream; upload a video file, not an audio file or image.")
    defaults = [s for s in candidates if s.disposition & av.stream.Disposition.default]
    return (defaults or candidates)[0]


def _interlaced(frame: Any, cc: Any) -> bool:
    return bool(frame.interlaced_frame) or _FIELD_ORDERS.get(int(cc.field_order or 0), "") in ("tt", "bb", "tb", "bt")


def _pick_audio(container: Any) -> Any | None:
    """The default audio stream, else the first: a player would play that one."""
    streams = [s for s in container.streams.audio if s.codec_context is not None and s.codec_context.channels]
    defaults = [s for s in streams if s.disposition & av.stream.Disposition.default]
    return (defaults or streams or [None])[0]


def _first_frame(container: Any, video: Any) -> Any:
    """Decode one frame: proves the video decodes and gives the rotation and true pixel format."""
    video.thread_type = "AUTO"
    try:
        for packet in container.demux(video):
            for frame in packet.decode():
                return frame
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise UnreadableMedia("The video stream could not be decoded; the file may be corrupt or truncated.") from exc
    raise UnreadableMedia("The video stream has no decodable frames; the file may be corrupt or truncated.")


def _duration(container: Any, video: Any, path: Path) -> tuple[float | None, bool]:
    if container.duration and container.duration > 0:
        return container.duration / av.time_base, False
    if video.duration and video.time_base:
        return float(video.duration * video.time_base), False
    return _estimate_duration(path, video.index)


def _stream_duration(stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return None


def _estimate_duration(path: Path, index: int) -> tuple[float | None, bool]:
    """No duration in the header (MediaRecorder WebM/MKV): read every packet's end time instead."""
    with av.open(str(path), options={"format_whitelist": DEMUXERS, "protocol_whitelist": PROTOCOLS}) as container:
        stream = container.streams[index]
        start = stream.start_time or 0
        end = None
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    packet_end = packet.pts + (packet.duration or 0)
                    end = packet_end if end is None else max(end, packet_end)
        except av.FFmpegError:
            pass  # a truncated tail still tells us how long the readable part is
    if end is None or not stream.time_base:
        return None, True
    return float((end - start) * stream.time_base), True


def _sample_aspect(video: Any) -> Fraction:
    """The container's pixel aspect if it states one, else the codec's: the rule ffmpeg itself applies."""
    for sar in (video.sample_aspect_ratio, video.codec_context.sample_aspect_ratio):
        if sar is not None and sar.numerator > 0 and sar.denominator > 0:
            return Fraction(sar.numerator, sar.denominator)
    return Fraction(1)


def _display_size(width: int, height: int, sar: Fraction, rotation: int) -> tuple[int, int]:
    w, h = max(1, round(width * sar)), height
    return (h, w) if rotation in (90, 270) else (w, h)


def _fps(video: Any) -> float | None:
    rate = video.average_rate or video.guessed_rate
    if rate is None or rate <= 0:
        return None
    value = float(rate)
    return value if math.isfinite(value) else None


def _codec_name(name: str) -> str:
    """Decoder names (libdav1d) back to FFmpeg's codec names (av1)."""
    return {"libdav1d": "av1", "libaom-av1": "av1"}.get(name, name)


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
