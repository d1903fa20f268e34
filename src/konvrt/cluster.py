"""Work that must run once across the cluster, not once per machine: turns taken on a shared row.

Each periodic task has a row holding when it is next due. A machine runs the task only if its
conditional UPDATE moved that time forward; every other machine's UPDATE matches no row. The same
statement works on SQLite and PostgreSQL, and a machine that dies mid-task costs one interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from konvrt.db import Base, Database, UTCDateTime, utcnow


class PeriodicTurn(Base):
    __tablename__ = "periodic_turns"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    next_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    holder: Mapped[str] = mapped_column(String(100), default="")


def take_turn(db: Database, name: str, interval: float, holder: str) -> bool:
    """True when this caller should run `name` now; then nobody else will for `interval` seconds."""
    now = utcnow()
    due = now + timedelta(seconds=interval)
    with db.write() as session:
        taken = session.execute(
            update(PeriodicTurn)
            .where(PeriodicTurn.name == name, PeriodicTurn.next_due_at <= now)
            .values(next_due_at=due, holder=holder)
        )
        if taken.rowcount == 1:  # type: ignore[attr-defined]
            return True
        if session.scalar(select(PeriodicTurn.name).where(PeriodicTurn.name == name)) is not None:
            return False
    try:
        with db.write() as session:  # the very first turn: whoever inserts the row runs it
            session.add(PeriodicTurn(name=name, next_due_at=due, holder=holder))
    except IntegrityError:
        return False
    return True
