"""FFmpeg -progress parsing: blocks, N/A, negative starts, clamping and monotonic reporting."""

from __future__ import annotations

from konvrt.media.progress import Monotonic, ProgressParser, percent

BLOCK = """frame=120
fps=60.0
out_time_us=4000000
out_time_ms=4000000
out_time=00:00:04.000000
speed=2.01x
progress=continue
"""


def feed_all(text: str) -> list[object]:
    parser = ProgressParser()
    return [block for line in text.splitlines() if (block := parser.feed(line)) is not None]


def test_block_gives_out_time_and_speed() -> None:
    [block] = feed_all(BLOCK)
    assert block.out_time == 4.0  # type: ignore[attr-defined]
    assert block.speed == 2.01  # type: ignore[attr-defined]
    assert block.done is False  # type: ignore[attr-defined]


def test_end_block() -> None:
    [block] = feed_all(BLOCK.replace("progress=continue", "progress=end"))
    assert block.done is True  # type: ignore[attr-defined]


def test_not_available_and_negative_times() -> None:
    blocks = feed_all("out_time_us=N/A\nout_time=N/A\nprogress=continue\nout_time_us=-23220\nprogress=continue\n")
    assert [b.out_time for b in blocks] == [None, 0.0]  # type: ignore[attr-defined]


def test_falls_back_to_clock_form() -> None:
    [block] = feed_all("out_time=00:01:02.500000\nprogress=continue\n")
    assert block.out_time == 62.5  # type: ignore[attr-defined]


def test_percent_is_clamped_below_100() -> None:
    assert percent(None, 10.0) == 0
    assert percent(5.0, None) == 0
    assert percent(5.0, 10.0) == 49
    assert percent(10.0, 10.0) == 99
    assert percent(12.0, 10.0) == 99
    assert percent(5.0, 10.0, lo=50, hi=99) == 74


def test_monotonic_only_reports_rises() -> None:
    seen: list[int] = []
    report = Monotonic(seen.append)
    for value in [0, 0, 5, 3, 40, 40, 120, -1]:
        report(value)
    assert seen == [0, 5, 40, 99]
