"""The usage page's chart: bars scaled to the busiest day, labels kept out of the stretched SVG."""

from __future__ import annotations

import re
from datetime import date, timedelta

from konvrt.dashboard.usage_stats import DayUse, bar_chart


def days(*credits: int) -> list[DayUse]:
    first = date(2026, 11, 1)
    return [DayUse(first + timedelta(days=i), c) for i, c in enumerate(credits)]


def test_bars_scale_to_the_peak_and_each_names_its_day() -> None:
    html = str(bar_chart(days(0, 2, 4), height=120))
    heights = [float(h) for h in re.findall(r'<rect class="bar"[^>]* height="([\d.]+)"', html)]
    assert heights == [0, 60.0, 120.0]
    assert "<title>2026-11-03: 4 credits</title>" in html
    assert "at most 4 in a day" in html


def test_labels_are_html_so_they_keep_their_size_when_the_svg_stretches() -> None:
    html = str(bar_chart(days(1, 0, 3)))
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert 'preserveAspectRatio="none"' in svg
    assert "<text" not in svg
    assert '<div class="chart-scale">peak 3</div>' in html
    assert "<span>Nov 01</span><span>Nov 03</span>" in html


def test_an_idle_month_draws_no_bars() -> None:
    html = str(bar_chart(days(0, 0)))
    assert re.findall(r'height="([\d.]+)"><title>', html) == ["0", "0"]
    assert "peak 0" in html
