"""People who use the dashboard: sign-up, sign-in, passwords, one-time links, and team members.

No HTTP here: the pages and the admin command line both call these with a database session.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from konvrt import accounts
from konvrt.config import Settings
from konvrt.dashboard import passwords
from konvrt.dashboard.models import BrowserSession, Role, SignInLink, User
from konvrt.db import Account, utcnow
from konvrt.errors import BadRequest, Conflict, Forbidden, InvalidField, NotFound

SIGN_IN_LINK_TTL = timedelta(hours=24)
INVITE_TTL = timedelta(days=7)
LINK_PATH = "/dashboard/link"


def token_hash(token: str) -> str:
    # Tokens are 256 random bits, so a fast hash is enough to keep the stored form useless to a reader.
    return hashlib.sha256(token.encode()).hexdigest()


def _email_taken(session: Session, email: str) -> bool:
    return (
        session.scalar(select(User.id).where(User.email == email)) is not None
        or session.scalar(select(Account.id).where(Account.email == email)) is not None
    )


def sign_up(session: Session, settings: Settings, email: str, password: str) -> User:
    """A new account on the free plan, with this person as its owner."""
    email = accounts.normalize_email(email)
    password_hash = passwords.hash_password(password)
    if _email_taken(session, email):
        raise InvalidField("email", "An account with this email address already exists. Sign in instead.")
    account = accounts.create_account(session, settings, email, "free")
    user = User(
        account_id=account.id, email=email, password_hash=password_hash, role=Role.OWNER, last_sign_in_at=utcnow()
    )
    session.add(user)
    session.flush()
    return user


def add_owner(session: Session, account: Account, password: str | None) -> User:
    """The person behind an account the admin command line created; no password means link-only for now."""
    user = User(
        account_id=account.id,
        email=account.email,
        password_hash=passwords.hash_password(password) if password is not None else None,
        role=Role.OWNER,
    )
    session.add(user)
    session.flush()
    return user


def owner_of(session: Session, account: Account) -> User:
    """The account's owner, created without a password for accounts made before the dashboard existed."""
    user = session.scalar(select(User).where(User.account_id == account.id, User.role == Role.OWNER))
    return user or add_owner(session, account, None)


def find(session: Session, email: str) -> User | None:
    try:
        return session.scalar(select(User).where(User.email == accounts.normalize_email(email)))
    except InvalidField:
        return None


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user whose email and password these are, or None; as slow for unknown emails as for known ones."""
    user = find(session, email)
    if not passwords.verify(user.password_hash if user else None, password) or user is None:
        return None
    assert user.password_hash is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    user.last_sign_in_at = utcnow()
    return user


def change_password(session: Session, user_id: int, current: str, new: str, *, keep_session: str | None) -> None:
    """Set a new password (the current one is required once one is set) and sign out every other browser."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    if user.password_hash is not None and not passwords.verify(user.password_hash, current):
        raise InvalidField("current_password", "The current password is not right.")
    user.password_hash = passwords.hash_password(new)
    others = delete(BrowserSession).where(BrowserSession.user_id == user_id)
    if keep_session is not None:
        others = others.where(BrowserSession.id != keep_session)
    session.execute(others)


def issue_link(session: Session, user: User, *, purpose: str = "signin", ttl: timedelta = SIGN_IN_LINK_TTL) -> str:
    """A one-time sign-in token. It travels in the link's #fragment, which browsers never send or log."""
    token = secrets.token_urlsafe(32)
    session.add(SignInLink(id=token_hash(token), user_id=user.id, purpose=purpose, expires_at=utcnow() + ttl))
    return token


def link_url(settings: Settings, token: str, *, base: str = "") -> str:
    """The link to give the person: `public_url` when set, else `base` (the address the page was served on)."""
    root = (settings.public_url or base or "http://127.0.0.1:8000").rstrip("/")
    return f"{root}{LINK_PATH}#{token}"


def redeem_link(session: Session, token: str) -> User:
    """The user a one-time link signs in; the link works once, before it expires."""
    now = utcnow()
    used = session.execute(
        update(SignInLink)
        .where(SignInLink.id == token_hash(token.strip()), SignInLink.used_at.is_(None), SignInLink.expires_at > now)
        .values(used_at=now)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        raise BadRequest("This sign-in link is not valid: it was used already or has expired. Ask for a new one.")
    link = session.get(SignInLink, token_hash(token.strip()))
    assert link is not None
    user = session.get(User, link.user_id)
    if user is None:
        raise BadRequest("This sign-in link's user no longer exists.")
    user.last_sign_in_at = now
    return user


def invite(session: Session, account: Account, email: str) -> tuple[User, str]:
    """Add a member to a team account; returns them and their one-time invitation token."""
    if account.plan != "team":
        raise Forbidden("Members need the team plan. Ask your administrator to move this account to team.")
    email = accounts.normalize_email(email)
    if _email_taken(session, email):
        raise InvalidField("email", f"{email} already has a Konvrt sign-in; each person belongs to one account.")
    user = User(account_id=account.id, email=email, password_hash=None, role=Role.MEMBER)
    session.add(user)
    session.flush()
    return user, issue_link(session, user, purpose="invite", ttl=INVITE_TTL)


def members(session: Session, account_id: int) -> list[User]:
    rows = session.scalars(select(User).where(User.account_id == account_id).order_by(User.created_at, User.id))
    return list(rows)


def remove_member(session: Session, account_id: int, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.account_id != account_id:
        raise NotFound("No such member.")
    if user.role == Role.OWNER:
        raise Conflict("The owner cannot be removed.")
    session.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))
    session.execute(delete(SignInLink).where(SignInLink.user_id == user.id))
    session.delete(user)
    return user
