"""Client file names: kept only as display text (never a path), and sent back in Content-Disposition
escaped as RFC 6266 says: an ASCII `filename="…"` fallback plus the exact name as RFC 5987 `filename*`.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

MAX_NAME_CHARS = 200  # the job row keeps 255; the "-compressed.mp4" suffix must still fit
# Control characters (C0 with NUL, DEL, C1) and the bidi overrides that make "exe.mp4" read as "4pm.exe".
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_NOT_TOKEN_SAFE = re.compile(r"[^A-Za-z0-9 !#$&+,.;=@^_`{}~()\[\]-]")


def clean_filename(name: str, default: str = "upload") -> str:
    """The last path component of a client's name, without control characters, at most 200 characters."""
    name = _UNPRINTABLE.sub("", unicodedata.normalize("NFC", name))
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip().strip(".")
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: MAX_NAME_CHARS - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_NAME_CHARS]
    return name or default


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """`attachment; filename="ascii"; filename*=UTF-8''percent-encoded` (the second only when they differ)."""
    name = clean_filename(filename)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = _NOT_TOKEN_SAFE.sub("_", ascii_name).strip()
    if not ascii_name or ascii_name.startswith("."):  # "видео.mp4" must not fall back to ".mp4"
        ascii_name = "download" + ascii_name
    header = f'{disposition}; filename="{ascii_name}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header
