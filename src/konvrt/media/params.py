"""Compress parameters: parse the form fields of POST /api/v1/compress into one frozen value (PURE).

`parse_compress_params` checks each field alone; `check_feasible` checks what needs the probe
(a target size the audio alone would overflow). Both raise `InvalidField` naming the field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Literal

from konvrt.errors import InvalidField

if TYPE_CHECKING:
    from konvrt.media.probe import MediaInfo

Codec = Literal["h264", "h265", "av1"]
Method = Literal["crf", "bitrate", "size"]

CODECS: dict[str, Codec] = {"h264": "h264", "avc": "h264", "h265": "h265", "hevc": "h265", "av1": "av1"}
METHODS: tuple[Method, ...] = ("crf", "bitrate", "size")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
QUALITY_MIN, QUALITY_MAX = 18, 51
BITRATE_MIN_KBPS, BITRATE_MAX_KBPS = 50, 200_000
MAX_DIMENSION = 16384

# Bytes a MP4 container spends beyond the streams (moov index, headers), as a share of the payload
# plus a floor; measured on our outputs at well under 1 %.
MUX_OVERHEAD_SHARE = 0.01
MUX_OVERHEAD_FLOOR = 4 * 1024
# Below this average video bitrate the picture is mush at any resolution; a target that leaves less
# is refused at submit rather than delivered as a useless file.
MIN_VIDEO_KBPS = 24
# AAC we re-encode to when the copied audio would not fit a size target.
MIN_AUDIO_KBPS = 32

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3,
}  # fmt: skip


@dataclass(frozen=True)
class CompressParams:
    codec: Codec = "h264"
    method: Method = "crf"
    quality: int = 23
    bitrate_kbps: int | None = None
    target_bytes: int | None = None
    max_width: int | None = None
    max_height: int | None = None
    preset: str | None = None
    allow_larger: bool = False

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> CompressParams:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)  # type: ignore[arg-type]


def parse_compress_params(form: Mapping[str, str]) -> CompressParams:
    """Validate the compress form's fields; unknown fields (file, webhook_url) are someone else's."""
    bitrate = _parse_bitrate(form.get("bitrate")) if _given(form, "bitrate") else None
    target = _parse_size(form.get("target_size")) if _given(form, "target_size") else None
    method = _parse_method(form.get("method")) if _given(form, "method") else _implied_method(bitrate, target)
    for field, value, owner in (("bitrate", bitrate, "bitrate"), ("target_size", target, "size")):
        if value is not None and method != owner:  # never drop a field the client sent in silence
            raise InvalidField(field, f"{field} applies only when method is {owner}, and method is {method}.")
    if method == "bitrate" and bitrate is None:
        raise InvalidField("bitrate", "bitrate is required when method is bitrate, e.g. 2500k or 2.5M.")
    if method == "size" and target is None:
        raise InvalidField("target_size", "target_size is required when method is size, e.g. 25MB or 8MiB.")
    width, height = _parse_resolution(form.get("resolution")) if _given(form, "resolution") else (None, None)
    return CompressParams(
        codec=_parse_codec(form.get("codec")),
        method=method,
        quality=_parse_quality(form.get("quality")),
        bitrate_kbps=bitrate if method == "bitrate" else None,
        target_bytes=target if method == "size" else None,
        max_width=width,
        max_height=height,
        preset=_parse_preset(form.get("preset")),
        allow_larger=_parse_bool("allow_larger", form.get("allow_larger")),
    )


def _implied_method(bitrate: int | None, target: int | None) -> Method:
    """No method named: a bitrate or a target size alone says which one the client means."""
    if bitrate is not None and target is not None:
        raise InvalidField("method", "Both bitrate and target_size were sent: choose method=bitrate or method=size.")
    return "bitrate" if bitrate is not None else "size" if target is not None else "crf"


def _given(form: Mapping[str, str], name: str) -> bool:
    return (form.get(name) or "").strip() != ""


def _parse_codec(raw: str | None) -> Codec:
    value = (raw or "h264").strip().lower()
    if value not in CODECS:
        raise InvalidField("codec", f"codec must be h264, h265 (or hevc) or av1, not {_show(raw)}.")
    return CODECS[value]


def _parse_method(raw: str | None) -> Method:
    value = (raw or "crf").strip().lower()
    if value not in METHODS:
        raise InvalidField("method", f"method must be crf, bitrate or size, not {_show(raw)}.")
    return value


def _parse_quality(raw: str | None) -> int:
    value = (raw or "").strip()
    if value == "":
        return 23
    if not re.fullmatch(r"[+-]?[0-9]+", value):
        raise InvalidField("quality", f"quality must be a whole number from 18 to 51, not {_show(raw)}.")
    quality = int(value)
    if not QUALITY_MIN <= quality <= QUALITY_MAX:
        raise InvalidField("quality", f"quality must be from 18 (best) to 51 (smallest), not {quality}.")
    return quality


def _parse_bitrate(raw: str | None) -> int:
    """'2500k', '2.5M', '2500' (kbit/s) or '2500000bps' -> kbit/s."""
    text = (raw or "").strip().lower().replace(" ", "")
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(k|m|g|kbps|mbps|kbit/s|mbit/s|bps)?", text)
    if not match:
        raise InvalidField("bitrate", f"bitrate must look like 2500k, 2.5M or 2500 (kbit/s), not {_show(raw)}.")
    number, unit = float(match.group(1)), match.group(2) or "k"
    scale = {"k": 1, "kbps": 1, "kbit/s": 1, "m": 1000, "mbps": 1000, "mbit/s": 1000, "g": 1e6, "bps": 1e-3}[unit]
    kbps = round(number * scale)
    if not BITRATE_MIN_KBPS <= kbps <= BITRATE_MAX_KBPS:
        raise InvalidField(
            "bitrate", f"bitrate must be between {BITRATE_MIN_KBPS}k and {BITRATE_MAX_KBPS // 1000}M, not {_show(raw)}."
        )
    return kbps


def _parse_size(raw: str | None) -> int:
    """'25MB' (10^6), '8MiB' (2^20), '1.5GB' or a number of bytes -> bytes."""
    text = (raw or "").strip().lower().replace(" ", "")
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([a-z]*)", text)
    if not match or match.group(2) not in _SIZE_UNITS:
        raise InvalidField(
            "target_size", f"target_size must look like 25MB, 8MiB or a number of bytes, not {_show(raw)}."
        )
    size = math.floor(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size < 10_000:
        raise InvalidField("target_size", f"target_size must be at least 10kB, not {_show(raw)}.")
    return size


def _parse_resolution(raw: str | None) -> tuple[int, int]:
    text = (raw or "").strip().lower()
    match = re.fullmatch(r"([0-9]+)\s*[x×:]\s*([0-9]+)", text)
    if not match:
        raise InvalidField("resolution", f"resolution must be WIDTHxHEIGHT, e.g. 1280x720, not {_show(raw)}.")
    width, height = int(match.group(1)), int(match.group(2))
    if not (2 <= width <= MAX_DIMENSION and 2 <= height <= MAX_DIMENSION):
        raise InvalidField("resolution", f"resolution must have sides from 2 to {MAX_DIMENSION} pixels, not {text}.")
    return width, height


def _parse_preset(raw: str | None) -> str | None:
    value = (raw or "").strip().lower()
    if value == "":
        return None
    if value not in PRESETS:
        raise InvalidField("preset", f"preset must be one of {', '.join(PRESETS)}, not {_show(raw)}.")
    return value


def _parse_bool(field: str, raw: str | None) -> bool:
    value = (raw or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidField(field, f"{field} must be true or false, not {_show(raw)}.")


def _show(raw: str | None) -> str:
    text = (raw or "").strip()
    return repr(text[:40] + ("…" if len(text) > 40 else ""))


# --- what needs the probe --------------------------------------------------------------------


def audio_kbps_for_size(info: MediaInfo) -> int:
    """The audio bitrate a size-targeted output will carry (the copied AAC's own, else our AAC's)."""
    if not info.has_audio:
        return 0
    if info.audio_codec == "aac" and info.audio_bitrate:
        return math.ceil(info.audio_bitrate / 1000)
    return aac_kbps(info.audio_channels)


def aac_kbps(channels: int | None) -> int:
    """What we spend on re-encoded AAC: 64k per channel, stereo at most (we downmix beyond two)."""
    return 64 * min(max(channels or 2, 1), 2)


def smallest_target_bytes(info: MediaInfo) -> int:
    """The smallest size target we accept: low-bitrate AAC plus a watchable minimum of video, plus container."""
    duration = info.duration or 0.0
    audio = MIN_AUDIO_KBPS if info.has_audio else 0
    payload = (audio + MIN_VIDEO_KBPS) * 1000 / 8 * duration
    return math.ceil(payload * (1 + MUX_OVERHEAD_SHARE) + MUX_OVERHEAD_FLOOR)


def check_feasible(params: CompressParams, info: MediaInfo) -> None:
    """Refuse at submit what cannot work once we know the input (today: size targets too small)."""
    if params.method != "size" or params.target_bytes is None or not info.duration:
        return
    smallest = smallest_target_bytes(info)
    if params.target_bytes < smallest:
        raise InvalidField(
            "target_size",
            f"target_size {_human(params.target_bytes)} is too small for {info.duration:.1f} s of video"
            f"{' with audio' if info.has_audio else ''}; the smallest sensible size is {_human(smallest)}"
            f" ({smallest} bytes).",
        )


def _human(size: int) -> str:
    if size >= 1000**2:
        return f"{size / 1000**2:.2f}MB"
    return f"{size / 1000:.1f}kB"
