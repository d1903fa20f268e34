"""The dashboard's tables: people who sign in, their browser sessions, one-time links, sign-in
attempts, credit-pack requests, and the secret that signs session cookies.

A person (`User`) belongs to one `konvrt.db.Account`; a team account has several. Everything secret
that the server must recognise later (session ids, one-time links) is stored only as a SHA-256 hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from konvrt.db import Base, UTCDateTime, utcnow


class Role:
    OWNER = "owner"
    MEMBER = "member"


class User(Base):
    __tablename__ = "dashboard_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)  # None: signs in by one-time link only
    role: Mapped[str] = mapped_column(String(16), default=Role.OWNER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BrowserSession(Base):
    """A signed-in browser. The cookie carries a random id; the row keys on its hash, so a database
    leak cannot sign anyone in, and deleting the row signs that browser out at once."""

    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("dashboard_users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SignInLink(Base):
    """A one-time sign-in link (from `konvrt accounts create` or an invitation)."""

    __tablename__ = "dashboard_links"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("dashboard_users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))  # signin | invite
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class SignInAttempt(Base):
    __tablename__ = "dashboard_sign_in_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class CreditRequestState:
    PENDING = "pending"
    APPROVED = "approved"
    DECLINED = "declined"


class CreditRequest(Base):
    """A credit pack someone asked for; credits arrive only when an administrator approves it."""

    __tablename__ = "dashboard_credit_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    requested_by: Mapped[str] = mapped_column(String(320))
    credits: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), default=CreditRequestState.PENDING, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class DashboardSecret(Base):
    """Server secrets shared by every API machine through the database (the cookie-signing key)."""

    __tablename__ = "dashboard_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
