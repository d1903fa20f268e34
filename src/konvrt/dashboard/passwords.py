"""Password hashing with Argon2id (argon2-cffi's recommended parameters) and the rules a password must meet."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from konvrt.errors import InvalidField

MIN_LENGTH = 10
MAX_LENGTH = 1024  # Argon2 takes any length; the cap only stops megabyte "passwords" from costing CPU

_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("konvrt-dummy-password")


def check_rules(password: str, field: str = "password") -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidField(field, f"Choose a password of at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        raise InvalidField(field, f"Choose a password of at most {MAX_LENGTH} characters.")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_rules(password))


def verify(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; always spends one Argon2 verification."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password[:MAX_LENGTH]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
