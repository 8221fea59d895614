"""Password hashing (argon2id, argon2-cffi) and the password policy."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from geo.errors import InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 hashes anything, but a megabyte "password" is a denial of service

_HASHER = PasswordHasher()  # argon2id, the library's current RFC 9106 low-memory profile
# verified against when the user does not exist, so a wrong name costs the same time as a wrong password
_DUMMY_HASH = _HASHER.hash("shequ-no-such-user-" + secrets.token_hex(8))


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, salt and parameters included)."""
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; a missing or unreadable hash never matches."""
    if not password_hash:
        _burn(password)
        return False
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _burn(password: str) -> None:
    try:
        _HASHER.verify(_DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        pass


def burn_time(password: str) -> None:
    """Spend the time of one verification (for unknown users: no timing hint of who exists)."""
    _burn(password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with older parameters (rehash it at the next successful login)."""
    try:
        return _HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def check_policy(password: str, user_name: str) -> None:
    """Raise InvalidInput when the password breaks the policy (length ≥ 10, not the user name)."""
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"密码至少 {MIN_LENGTH} 个字符 the password needs at least {MIN_LENGTH} characters",
                           code="weak_password")
    if len(password) > MAX_LENGTH:
        raise InvalidInput(f"密码过长（最多 {MAX_LENGTH} 个字符） the password is too long (at most {MAX_LENGTH})",
                           code="weak_password")
    name = user_name.strip().casefold()
    if name and (password.casefold() == name or (len(name) >= 4 and name in password.casefold())):
        raise InvalidInput("密码不能是或包含用户名 the password must not be or contain the user name",
                           code="weak_password")
    if len(set(password)) < 4:
        raise InvalidInput("密码过于简单（不同字符太少） the password is too simple (too few distinct characters)",
                           code="weak_password")


def generate_password() -> str:
    """A random password (20 URL-safe characters, about 120 bits)."""
    return secrets.token_urlsafe(15)
