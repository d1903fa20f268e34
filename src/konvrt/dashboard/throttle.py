"""Sign-in attempts, throttled per email address and per client address, counted in the database so
every API machine sees the same counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from konvrt.dashboard.models import SignInAttempt
from konvrt.db import utcnow

WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_EMAIL = 10
MAX_FAILURES_PER_ADDRESS = 50
_KEEP = timedelta(days=1)


def wait_seconds(session: Session, email: str | None, address: str) -> int:
    """0 when a sign-in may be tried now; otherwise seconds until the oldest counted failure leaves the window.

    `email` None checks the client address alone (sign-ups, which are recorded as failures of email "")."""
    since = utcnow() - WINDOW
    checks = [(SignInAttempt.address, address, MAX_FAILURES_PER_ADDRESS)]
    if email is not None:
        checks.insert(0, (SignInAttempt.email, email, MAX_FAILURES_PER_EMAIL))
    for column, value, limit in checks:
        failures = select(SignInAttempt.at).where(
            column == value, SignInAttempt.succeeded.is_(False), SignInAttempt.at > since
        )
        count = session.scalar(select(func.count()).select_from(failures.subquery())) or 0
        if count >= limit:
            newest_allowed = session.scalars(failures.order_by(SignInAttempt.at.desc()).offset(limit - 1)).first()
            if newest_allowed is not None:
                return max(1, int((newest_allowed + WINDOW - utcnow()).total_seconds()) + 1)
    return 0


def record(session: Session, email: str, address: str, *, succeeded: bool) -> None:
    session.add(SignInAttempt(email=email, address=address, succeeded=succeeded))
    if succeeded:  # a good sign-in forgives this email's earlier mistakes
        session.execute(delete(SignInAttempt).where(SignInAttempt.email == email, SignInAttempt.succeeded.is_(False)))
    session.execute(delete(SignInAttempt).where(SignInAttempt.at < utcnow() - _KEEP))
