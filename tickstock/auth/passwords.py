"""Password hashing (argon2id) and the rules for new usernames and passwords."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "PASSWORD_MAX_LENGTH",
    "PASSWORD_MIN_LENGTH",
    "USERNAME_PATTERN",
    "check_password",
    "check_username",
    "hash_password",
    "needs_rehash",
    "secret_hash",
    "verify_password",
]

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024

# argon2id with the library's RFC 9106 defaults; hashing runs in a thread, off the event loop.
_hasher = PasswordHasher()
_dummy_hash: str | None = None


async def hash_password(password: str) -> str:
    """The argon2id hash of ``password``."""
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password``; with no hash (unknown user) spend the same time and answer False."""
    global _dummy_hash
    if password_hash is None:
        if _dummy_hash is None:
            _dummy_hash = await hash_password(secrets.token_urlsafe(16))
        await asyncio.to_thread(_verify, _dummy_hash, password)
        return False
    return await asyncio.to_thread(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when ``password_hash`` was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


def check_username(username: str) -> str:
    """``username`` when acceptable for a new account, else ValueError saying why."""
    if not USERNAME_PATTERN.match(username):
        raise ValueError(
            "username must be 2-64 characters: letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    return username


def check_password(password: str) -> str:
    """``password`` when acceptable as a new password, else ValueError saying why."""
    if not PASSWORD_MIN_LENGTH <= len(password) <= PASSWORD_MAX_LENGTH:
        raise ValueError(
            f"password must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters long"
        )
    return password


def secret_hash(secret: str) -> str:
    """The stored form of an API token's secret (SHA-256: the secret is random, not a password)."""
    return hashlib.sha256(secret.encode()).hexdigest()
