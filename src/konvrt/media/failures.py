"""(exit code, stderr tail) -> a sentence a person can act on (PURE, table-driven).

The sentence goes into the job's public `error`, so it never quotes stderr: that holds server paths.
The first row whose pattern matches the tail wins; order rows from specific to general.
"""

from __future__ import annotations

import re

_ROWS: tuple[tuple[str, str], ...] = (
    (r"not on (the )?(format|protocol)? ?whitelist|not on whitelist",
     "The file is a playlist or a format we do not read; upload the video file itself (MP4, MOV, MKV, WebM, AVI, TS)."),
    (r"No space left on device",
     "The server ran out of disk space while encoding; try again later."),
    (r"Cannot allocate memory|Out of memory|std::bad_alloc",
     "The server ran out of memory for this video; try again with a smaller resolution."),
    (r"Decoder \(codec [^)]*\) not found|Unsupported codec|no decoder",
     "The video uses a codec this server cannot decode; convert it to H.264, HEVC, VP9 or AV1 first."),
    (r"Could not find tag for codec|codec not currently supported in container",
     "A stream of this video cannot be stored in MP4; please report this file to the operator."),
    (r"Image size is too small|Picture size \d+x\d+ is invalid|not divisible by 2|dimension",
     "The video's frame size is not one the encoder accepts; try a different resolution."),
    (r"Error (while opening|initializing) (the )?encoder|Error initializing output stream|Could not open encoder",
     "The encoder refused these settings for this video; try another codec, resolution or quality."),
    (r"moov atom not found|Invalid NAL unit size|partial file|Truncat|unexpected end of file",
     "The video file is incomplete or truncated; upload the whole file again."),
    (r"Invalid data found when processing input|corrupt|error while decoding|decode_slice|concealing",
     "The video could not be decoded; the file may be damaged. Try re-exporting it from the source."),
)  # fmt: skip

_COMPILED = tuple((re.compile(pattern, re.IGNORECASE), sentence) for pattern, sentence in _ROWS)

TIMED_OUT = "The encode took longer than this server's time limit for one job; try a shorter video or a faster preset."
STALLED = "The encode stopped making progress and was stopped; the file may be damaged. Try re-exporting it."
CANCELLED = "The encode was cancelled."
KILLED = (
    "The encoder was stopped by the system (signal {signal}), usually because memory ran out; try a smaller resolution."
)


def explain(returncode: int, stderr_tail: str, *, timed_out: bool = False, stalled: bool = False,
            cancelled: bool = False) -> str:  # fmt: skip
    """The public sentence for a failed FFmpeg run."""
    if cancelled:
        return CANCELLED
    if timed_out:
        return TIMED_OUT
    if stalled:
        return STALLED
    for pattern, sentence in _COMPILED:
        if pattern.search(stderr_tail):
            return sentence
    if returncode < 0:
        return KILLED.format(signal=-returncode)
    return f"The video could not be encoded (FFmpeg exit code {returncode}); the file may be damaged or unusual."
