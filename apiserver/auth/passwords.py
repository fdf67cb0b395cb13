"""argon2id password hashes for dashboard accounts."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8  # as the original

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost
# Verified when the user does not exist, so a wrong name costs as long as a wrong
# password and the response time does not reveal which names exist.
_DUMMY = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    """An argon2id hash for the config file; ValueError when the password is too short."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash still spends the time of a check."""
    try:
        return _hasher.verify(stored_hash or _DUMMY, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
