"""What the usage page shows: credits used this month, credits per day, and the ledger. Pure helpers
plus two queries; the SVG chart is drawn here as text, so the page needs no script to show it."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlalchemy.orm import Session

from konvrt.db import LedgerEntry, utcnow

SPEND_KINDS = ("charge", "refund")
CHART_DAYS = 30


@dataclass(frozen=True)
class DayUse:
    day: date
    credits: int


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def daily_use(entries: list[tuple[datetime, int]], today: date, days: int = CHART_DAYS) -> list[DayUse]:
    """Credits spent per UTC day (charges less refunds, never below zero), oldest first, `days` long."""
    spent: dict[date, int] = defaultdict(int)
    for moment, delta in entries:
        spent[moment.date()] -= delta
    first = today - timedelta(days=days - 1)
    return [DayUse(first + timedelta(days=i), max(0, spent[first + timedelta(days=i)])) for i in range(days)]


def spend_entries(session: Session, account_id: int, since: datetime) -> list[tuple[datetime, int]]:
    query = select(LedgerEntry.created_at, LedgerEntry.delta).where(
        LedgerEntry.account_id == account_id, LedgerEntry.kind.in_(SPEND_KINDS), LedgerEntry.created_at >= since
    )
    return [(moment, delta) for moment, delta in session.execute(query).all()]


def used_since(entries: list[tuple[datetime, int]], since: datetime) -> int:
    return max(0, -sum(delta for moment, delta in entries if moment >= since))


def ledger(session: Session, account_id: int, limit: int = 50) -> list[LedgerEntry]:
    query = (
        select(LedgerEntry)
        .where(LedgerEntry.account_id == account_id)
        .order_by(LedgerEntry.created_at.desc(), LedgerEntry.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def summary(session: Session, account_id: int) -> tuple[int, list[DayUse]]:
    """(credits used this month, credits per day over the chart's days)."""
    now = utcnow()
    start = min(month_start(now), now - timedelta(days=CHART_DAYS))
    entries = spend_entries(session, account_id, start)
    return used_since(entries, month_start(now)), daily_use(entries, now.date())


def bar_chart(days: list[DayUse], width: int = 600, height: int = 120) -> Markup:
    """An accessible bar chart: one SVG bar per day with a title each. The SVG stretches to the card's
    width, so its labels (the peak, the first and last dates) are HTML beside it and keep their size
    on a phone and a laptop alike."""
    peak = max((d.credits for d in days), default=0)
    slot = width / max(1, len(days))
    total = sum(d.credits for d in days)
    label = f"Credits used per day, last {len(days)} days: {total} in all, at most {peak} in a day."
    parts = [
        f'<div class="chart-scale">peak {peak}</div>',
        f'<svg class="chart" viewBox="0 0 {width} {height}" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
        f'<line class="axis" x1="0" y1="{height}" x2="{width}" y2="{height}" vector-effect="non-scaling-stroke"/>',
    ]
    for i, d in enumerate(days):
        bar = round(height * d.credits / peak, 1) if peak else 0
        shown = max(bar, 1.5) if d.credits else 0
        x, y = round(i * slot + slot * 0.15, 1), round(height - shown, 1)
        tip = f"{d.day.isoformat()}: {d.credits} credit{'s' if d.credits != 1 else ''}"
        parts.append(
            f'<rect class="bar" x="{x}" y="{y}" width="{round(slot * 0.7, 1)}" height="{shown}">'
            f"<title>{tip}</title></rect>"
        )
    parts.append("</svg>")
    if days:
        parts.append(
            f'<div class="chart-dates"><span>{days[0].day:%b %d}</span><span>{days[-1].day:%b %d}</span></div>'
        )
    return Markup("".join(parts))
