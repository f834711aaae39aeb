"""Password hashes: argon2id, at the costs the process's settings give (`Settings`,
`PASSWORD_HASH_TIME_COST` and `PASSWORD_HASH_MEMORY_KIB`). A hash made at other costs still
verifies, and says it wants making again (`needs_rehash`)."""

from __future__ import annotations

import contextlib

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Verifying against this keeps the time of a failed login the same whether or not the user exists.
_DUMMY_HASH = _hasher.hash("fieldcast-timing-equaliser")


def configure(*, time_cost: int, memory_kib: int) -> None:
    """Hash at these costs from now on."""
    global _hasher, _DUMMY_HASH
    if (_hasher.time_cost, _hasher.memory_cost) == (time_cost, memory_kib):
        return
    _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
    _DUMMY_HASH = _hasher.hash("fieldcast-timing-equaliser")


def hash_of(password: str) -> str:
    return _hasher.hash(password)


def matches(stored: str | None, password: str) -> bool:
    """Whether `password` is the one `stored` was made from; with no hash, as long as a failed
    comparison takes."""
    if stored is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_DUMMY_HASH, password)
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
