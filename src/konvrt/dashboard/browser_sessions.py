"""Signed-in browsers: start, look up, end; and the database-held key that signs session cookies."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from konvrt.dashboard.models import BrowserSession, DashboardSecret, User
from konvrt.dashboard.people import token_hash
from konvrt.db import Account, Database, utcnow

LIFETIME = timedelta(days=14)
# Writing last_seen_at on every page view would turn each read into a write; once a minute is enough.
_SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page: the person, their account, and the session's stored id."""

    user_id: int
    email: str
    role: str
    has_password: bool
    account: Account
    session_id: str
    seen_long_ago: bool = False  # last_seen_at is worth updating


def start(session: Session, user: User) -> str:
    """A new session for `user`; the returned token goes in the (signed) cookie, its hash in the table."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(BrowserSession(id=token_hash(token), user_id=user.id, created_at=now, expires_at=now + LIFETIME))
    session.execute(delete(BrowserSession).where(BrowserSession.expires_at < now))
    return token


def resolve(session: Session, token: str) -> Viewer | None:
    row = session.get(BrowserSession, token_hash(token))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    account = session.get(Account, user.account_id) if user is not None else None
    if user is None or account is None:
        return None
    stale = row.last_seen_at < utcnow() - _SEEN_RESOLUTION
    return Viewer(user.id, user.email, user.role, user.password_hash is not None, account, row.id, stale)


def touch(db: Database, viewer: Viewer) -> None:
    if not viewer.seen_long_ago:
        return
    with db.write() as session:
        session.execute(
            update(BrowserSession)
            .where(BrowserSession.id == viewer.session_id, BrowserSession.last_seen_at < utcnow() - _SEEN_RESOLUTION)
            .values(last_seen_at=utcnow())
        )


def end(session: Session, token: str) -> None:
    session.execute(delete(BrowserSession).where(BrowserSession.id == token_hash(token)))


def cookie_key(db: Database) -> str:
    """The key that signs session cookies: made once, kept in the database, so every API machine and
    every restart agrees on it without a setting to copy around."""
    with db.read() as session:
        value = session.scalar(select(DashboardSecret.value).where(DashboardSecret.name == "session"))
    if value is not None:
        return value
    try:
        with db.write() as session:
            if session.get(DashboardSecret, "session") is None:
                session.add(DashboardSecret(name="session", value=secrets.token_urlsafe(48)))
    except IntegrityError:  # another machine made it first
        pass
    with db.read() as session:
        stored = session.scalar(select(DashboardSecret.value).where(DashboardSecret.name == "session"))
    assert stored is not None
    return stored
