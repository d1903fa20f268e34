"""failures.explain: known stderr tails become sentences a person can act on, never raw stderr."""

from __future__ import annotations

import pytest

from konvrt.media import failures


@pytest.mark.parametrize(
    ("tail", "words"),
    [
        ("[mov,mp4] moov atom not found\n/data/u/1.mp4: Invalid data found when processing input", "incomplete"),
        ("Format hls is not on the format whitelist 'mov,matroska'", "playlist"),
        ("Error writing trailer: No space left on device", "disk space"),
        ("[libx265] std::bad_alloc", "memory"),
        ("[h264] error while decoding MB 3 4", "damaged"),
        ("Could not find tag for codec pcm_s16le in stream #1", "MP4"),
    ],
)
def test_known_tails(tail: str, words: str) -> None:
    sentence = failures.explain(1, tail)
    assert words in sentence
    assert "/data" not in sentence and "[" not in sentence


def test_flags_win_over_the_tail() -> None:
    assert failures.explain(-15, "anything", cancelled=True) == failures.CANCELLED
    assert failures.explain(-15, "anything", timed_out=True) == failures.TIMED_OUT
    assert failures.explain(-15, "anything", stalled=True) == failures.STALLED


def test_signal_and_unknown() -> None:
    assert "signal 9" in failures.explain(-9, "")
    unknown = failures.explain(187, "/secret/path: something odd")
    assert "187" in unknown and "/secret" not in unknown
