"""Credit packs and the requests for them. With no payment provider, a purchase is a request that an
administrator approves (`konvrt credits approve ID`); credits arrive only then, through the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from konvrt import billing
from konvrt.dashboard.models import CreditRequest, CreditRequestState
from konvrt.db import Account, utcnow
from konvrt.errors import Conflict, InvalidField, NotFound, TooManyRequests


@dataclass(frozen=True)
class Pack:
    credits: int
    label: str
    blurb: str


PACKS = (
    Pack(500, "Starter", "About 500 short h264 jobs of up to 20 MiB each."),
    Pack(2000, "Growth", "For a steady stream of uploads."),
    Pack(10000, "Volume", "For batch work and big libraries."),
)
MAX_PENDING = 3


def request_pack(session: Session, account_id: int, requested_by: str, credits: int) -> CreditRequest:
    if credits not in {pack.credits for pack in PACKS}:
        raise InvalidField("credits", "Choose one of the packs listed.")
    pending = session.scalar(
        select(func.count()).where(
            CreditRequest.account_id == account_id, CreditRequest.state == CreditRequestState.PENDING
        )
    )
    if (pending or 0) >= MAX_PENDING:
        raise TooManyRequests(f"This account already has {MAX_PENDING} requests waiting for approval.")
    row = CreditRequest(account_id=account_id, requested_by=requested_by, credits=credits)
    session.add(row)
    session.flush()
    return row


def for_account(session: Session, account_id: int, limit: int = 20) -> list[CreditRequest]:
    query = (
        select(CreditRequest)
        .where(CreditRequest.account_id == account_id)
        .order_by(CreditRequest.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def listing(session: Session, *, everything: bool = False) -> list[tuple[CreditRequest, str]]:
    """Requests with their account's email, oldest first; only pending ones unless `everything`."""
    query = select(CreditRequest, Account.email).join(Account, Account.id == CreditRequest.account_id)
    if not everything:
        query = query.where(CreditRequest.state == CreditRequestState.PENDING)
    return [(row, email) for row, email in session.execute(query.order_by(CreditRequest.id)).all()]


def decide(session: Session, request_id: int, *, approve: bool) -> CreditRequest:
    """Approve (grant the pack) or decline a pending request, exactly once however many admins race."""
    state = CreditRequestState.APPROVED if approve else CreditRequestState.DECLINED
    done = session.execute(
        update(CreditRequest)
        .where(CreditRequest.id == request_id, CreditRequest.state == CreditRequestState.PENDING)
        .values(state=state, decided_at=utcnow())
    )
    row = session.get(CreditRequest, request_id, populate_existing=True)
    if row is None:
        raise NotFound(f"No credit request {request_id}.")
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"Credit request {request_id} was already {row.state}.")
    if approve:
        billing.grant(session, row.account_id, row.credits, kind="pack", note=f"credit pack (request {row.id})")
    return row
