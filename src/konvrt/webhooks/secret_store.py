"""Accounts' webhook secrets: the current one (made on first use), rotation, and who signs now."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from konvrt.db import utcnow
from konvrt.webhooks.models import WebhookSecret
from konvrt.webhooks.signing import generate_secret


def current_secret(session: Session, account_id: int) -> str:
    """The account's current secret, created the first time anyone asks."""
    row = session.scalar(
        select(WebhookSecret)
        .where(WebhookSecret.account_id == account_id, WebhookSecret.expires_at.is_(None))
        .order_by(WebhookSecret.id.desc())
        .limit(1)
    )
    if row is None:
        row = WebhookSecret(account_id=account_id, secret=generate_secret())
        session.add(row)
        session.flush()
    return row.secret


def rotate(session: Session, account_id: int, overlap: timedelta) -> str:
    """Make a new current secret; the old ones keep signing alongside it for `overlap`."""
    now = utcnow()
    for row in session.scalars(
        select(WebhookSecret).where(WebhookSecret.account_id == account_id, WebhookSecret.expires_at.is_(None))
    ):
        row.expires_at = now + overlap
    row = WebhookSecret(account_id=account_id, secret=generate_secret(), created_at=now)
    session.add(row)
    session.flush()
    return row.secret


def signing_secrets(session: Session, account_id: int, now: datetime | None = None) -> list[str]:
    """Every secret that signs right now: the current one first, then rotated-out ones still in overlap."""
    now = now or utcnow()
    rows = session.scalars(
        select(WebhookSecret)
        .where(
            WebhookSecret.account_id == account_id,
            or_(WebhookSecret.expires_at.is_(None), WebhookSecret.expires_at > now),
        )
        .order_by(WebhookSecret.expires_at.is_not(None), WebhookSecret.id.desc())
    ).all()
    if not rows:
        return [current_secret(session, account_id)]
    return [row.secret for row in rows]
