"""Helpers for media tests that read decoded output (kept out of conftest so tests can import them)."""

from __future__ import annotations

from pathlib import Path

import av


def stream_ends(path: Path) -> dict[str, float]:
    """The end time (s) of the first video and first audio stream, from their packets."""
    ends: dict[str, float] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            stream = packet.stream
            if packet.pts is None or stream.type not in ("video", "audio"):
                continue
            end = float((packet.pts + (packet.duration or 0)) * stream.time_base)
            ends[stream.type] = max(ends.get(stream.type, 0.0), end)
    return ends


def luma_spread(path: Path) -> tuple[float, int]:
    """(mean, max - min) of the middle video frame's luma, padding excluded."""
    with av.open(str(path)) as container:
        frames = [frame for frame in container.decode(video=0)]
    frame = frames[len(frames) // 2].reformat(format="gray")
    plane = frame.planes[0]
    rows = bytes(plane)
    values = [v for y in range(frame.height) for v in rows[y * plane.line_size : y * plane.line_size + frame.width]]
    return sum(values) / len(values), max(values) - min(values)
