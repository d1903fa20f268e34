"""Accounts, plans and API keys (`kvrt_` + 40 random characters, stored only as a SHA-256 hash)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from konvrt import billing
from konvrt.config import Settings
from konvrt.db import Account, ApiKey, LedgerEntry, utcnow
from konvrt.errors import BadRequest, Forbidden, InvalidField, NotFound, Unauthorized

PLANS = ("free", "pro", "team")
API_PLANS = ("pro", "team")
KEY_PREFIX = "kvrt_"
_KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_KEY_RANDOM_LENGTH = 40
_PREFIX_LENGTH = 12  # what is kept in clear to name a key: kvrt_ and 7 characters


@dataclass(frozen=True)
class Caller:
    """The account an API request acts for, as read in the one query that checked its key."""

    id: int
    plan: str
    balance: int
    total_purchased: int
    key_id: int
    key_last_used_at: datetime | None


# Every API request runs this: key and account in one Core query, no ORM objects to build.
_CALLER = select(
    Account.id,
    Account.plan,
    Account.balance,
    Account.total_purchased,
    ApiKey.id.label("key_id"),
    ApiKey.last_used_at,
    ApiKey.revoked_at,
).join(Account, Account.id == ApiKey.account_id)


@dataclass(frozen=True)
class NewKey:
    key: str
    prefix: str
    last4: str


def hash_key(key: str) -> str:
    # Keys carry 238 bits of randomness, so a fast hash is safe here, unlike for passwords.
    return hashlib.sha256(key.encode()).hexdigest()


def normalize_email(email: str) -> str:
    """The one form an email is stored and compared in, for the API's accounts and the dashboard's people."""
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 320 or not email.isprintable() or " " in email:
        raise InvalidField("email", "Enter an email address such as you@example.com.")
    return email


def _check_plan(plan: str) -> str:
    if plan not in PLANS:
        raise BadRequest(f"Unknown plan {plan!r}; choose one of {', '.join(PLANS)}.")
    return plan


def create_account(session: Session, settings: Settings, email: str, plan: str) -> Account:
    email = normalize_email(email)
    _check_plan(plan)
    if session.scalar(select(Account).where(Account.email == email)) is not None:
        raise BadRequest(f"An account for {email} already exists.")
    account = Account(email=email, plan=plan, balance=0, total_purchased=0)
    session.add(account)
    session.flush()
    _grant_plan_credits(session, settings, account)
    return account


def get_account(session: Session, email: str) -> Account:
    account = session.scalar(select(Account).where(Account.email == normalize_email(email)))
    if account is None:
        raise NotFound(f"No account for {email}.")
    return account


def set_plan(session: Session, settings: Settings, email: str, plan: str) -> Account:
    account = get_account(session, email)
    account.plan = _check_plan(plan)
    _grant_plan_credits(session, settings, account)
    return account


def _grant_plan_credits(session: Session, settings: Settings, account: Account) -> None:
    """Top plan credits up to the plan's included amount: a move up grants the difference once."""
    granted = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.delta), 0)).where(
            LedgerEntry.account_id == account.id, LedgerEntry.kind == "plan"
        )
    )
    missing = settings.included_credits(account.plan) - int(granted or 0)
    if missing > 0:
        billing.grant(session, account.id, missing, kind="plan", note=f"{account.plan} plan credits")


def create_key(session: Session, account: Account, name: str = "") -> NewKey:
    key = KEY_PREFIX + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(_KEY_RANDOM_LENGTH))
    new = NewKey(key=key, prefix=key[:_PREFIX_LENGTH], last4=key[-4:])
    session.add(ApiKey(account_id=account.id, key_hash=hash_key(key), prefix=new.prefix, last4=new.last4, name=name))
    return new


def revoke_key(session: Session, key_or_prefix: str) -> int:
    """Revoke the key given in full, or the one live key its prefix names; returns how many were revoked."""
    given = len(key_or_prefix)
    if key_or_prefix.startswith(KEY_PREFIX) and given == len(KEY_PREFIX) + _KEY_RANDOM_LENGTH:
        keys = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key_or_prefix))).all()
    elif key_or_prefix.startswith(KEY_PREFIX) and len(KEY_PREFIX) + 4 <= given <= _PREFIX_LENGTH:
        # Only the first 12 characters are stored in clear: anything longer than that and shorter than
        # the whole key cannot be checked, and cutting it short could revoke a key it does not name.
        keys = session.scalars(select(ApiKey).where(ApiKey.prefix.startswith(key_or_prefix))).all()
    else:
        raise BadRequest(
            f"Give the whole key or its prefix: kvrt_ and 4 to {_PREFIX_LENGTH - len(KEY_PREFIX)} more characters."
        )
    live = [k for k in keys if k.revoked_at is None]
    if len(live) > 1:
        raise BadRequest(f"{key_or_prefix} matches {len(live)} keys; give a longer prefix or the whole key.")
    for k in live:
        k.revoked_at = utcnow()
    return len(live)


def authenticate(session: Session, authorization: str | None) -> Caller:
    """The account behind an `Authorization: Bearer kvrt_…` header, or Unauthorized/Forbidden."""
    if not authorization:
        raise Unauthorized("Missing API key: send 'Authorization: Bearer kvrt_…'.", code="missing_api_key")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(KEY_PREFIX):
        raise Unauthorized("Malformed Authorization header: expected 'Bearer kvrt_…'.", code="invalid_api_key")
    # Looking the key up by its hash means no comparison ever runs over the secret itself.
    row = session.execute(_CALLER.where(ApiKey.key_hash == hash_key(key))).one_or_none()
    if row is None or row.revoked_at is not None:
        raise Unauthorized("Invalid or revoked API key.", code="invalid_api_key")
    if row.plan not in API_PLANS:
        raise Forbidden("API access requires a Pro or Team plan.", code="plan_required")
    return Caller(row.id, row.plan, row.balance, row.total_purchased, row.key_id, row.last_used_at)
