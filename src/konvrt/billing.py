"""Prices and the credit ledger: charge, refund and grant, safe however many requests race."""

from __future__ import annotations

import math

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from konvrt.config import Settings
from konvrt.db import Account, LedgerEntry
from konvrt.errors import BadRequest, PaymentRequired


def video_price(settings: Settings, size_bytes: int, codec: str) -> int:
    return max(1, math.ceil(size_bytes / settings.credit_bytes)) * settings.codec_factor(codec)


def charge(session: Session, account_id: int, amount: int, *, job_id: str | None = None, note: str = "") -> None:
    """Take `amount` credits or raise PaymentRequired; one conditional UPDATE, so races cannot overdraw."""
    result = session.execute(
        update(Account)
        .where(Account.id == account_id, Account.balance >= amount)
        .values(balance=Account.balance - amount)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        balance = session.scalar(select(Account.balance).where(Account.id == account_id))
        raise PaymentRequired(f"This job costs {amount} credits and the balance is {balance}. Buy a credit pack.")
    session.add(LedgerEntry(account_id=account_id, delta=-amount, kind="charge", job_id=job_id, note=note))


def refund(session: Session, account_id: int, job_id: str) -> int:
    """Give back what a job was charged, at most once; returns the credits refunded."""
    entries = session.scalars(
        select(LedgerEntry).where(LedgerEntry.job_id == job_id, LedgerEntry.kind.in_(("charge", "refund")))
    ).all()
    owed = -sum(e.delta for e in entries)
    if owed <= 0:
        return 0
    session.execute(update(Account).where(Account.id == account_id).values(balance=Account.balance + owed))
    session.add(LedgerEntry(account_id=account_id, delta=owed, kind="refund", job_id=job_id))
    return owed


def grant(session: Session, account_id: int, amount: int, *, kind: str = "pack", note: str = "") -> None:
    """Add purchased or included credits; they count towards `total_purchased`."""
    if amount <= 0:
        raise BadRequest("A grant must be a positive number of credits.")
    session.execute(
        update(Account)
        .where(Account.id == account_id)
        .values(balance=Account.balance + amount, total_purchased=Account.total_purchased + amount)
    )
    session.add(LedgerEntry(account_id=account_id, delta=amount, kind=kind, note=note))
