"""Per-account concurrency caps: one account's 500 queued jobs do not starve another account's one.

Priorities: jobs are taken oldest first, except that an account already running its plan's cap of
jobs (`KONVRT_PRO_CONCURRENCY`, `KONVRT_TEAM_CONCURRENCY`) is passed over until one of them ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, or_, select, text
from sqlalchemy.orm import Session, aliased

from konvrt.db import Account, Job

_RUNNING = "processing"


def _running_of(account_id: Any, now: datetime) -> Any:
    other = aliased(Job)
    return select(func.count()).where(
        other.account_id == account_id, other.status == _RUNNING, other.lease_until >= now
    )


def _cap_of(account_id: Any, caps: Mapping[str, int]) -> Any:
    cap = case(*((Account.plan == plan, literal(n)) for plan, n in caps.items()), else_=literal(0))
    return select(cap).where(Account.id == account_id)


def under_cap(caps: Mapping[str, int], now: datetime) -> ColumnElement[bool]:
    """A WHERE clause on Job: its account is below its plan's cap (or has none)."""
    cap = _cap_of(Job.account_id, caps).scalar_subquery()
    return or_(cap == 0, _running_of(Job.account_id, now).scalar_subquery() < cap)


def full_after_lock(session: Session, account_id: int, caps: Mapping[str, int], now: datetime) -> bool:
    """PostgreSQL: serialise claims per account, then count again, so racing workers cannot overshoot."""
    # The lock lasts until this transaction commits; the recount then sees every earlier claim.
    session.execute(text("SELECT pg_advisory_xact_lock(1263, CAST(:id AS integer))"), {"id": account_id})
    cap = session.scalar(_cap_of(account_id, caps)) or 0
    return bool(cap) and (session.scalar(_running_of(account_id, now)) or 0) >= cap
