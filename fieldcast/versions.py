"""App versions as the apps send them (`X-App-Version: 2.4.1`), compared by semantic versioning."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

# MAJOR.MINOR[.PATCH], an optional pre-release after `-` and build metadata after `+`.
_VERSION_RE = re.compile(
    r"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})(?:\.(0|[1-9]\d{0,8}))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
MAX_LENGTH = 64


@total_ordering
@dataclass(frozen=True)
class AppVersion:
    major: int
    minor: int
    patch: int
    # Semantic versioning's rule: 2.0.0-beta.1 < 2.0.0. Build metadata does not count.
    prerelease: tuple[tuple[int, int | str], ...] | None

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # A release sorts after all its pre-releases.
        prerelease = self.prerelease
        return (self.major, self.minor, self.patch, prerelease is None, prerelease or ())

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, AppVersion):
            return NotImplemented
        return self._key() < other._key()

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.prerelease:
            text += "-" + ".".join(str(part) for _, part in self.prerelease)
        return text


def parse(text: str) -> AppVersion | None:
    """The version `text` names, or None when it is not MAJOR.MINOR[.PATCH][-pre][+build]."""
    if len(text) > MAX_LENGTH:
        return None
    match = _VERSION_RE.match(text.strip())
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    prerelease = None
    if pre is not None:
        # Numeric identifiers sort before alphanumeric ones, and numerically among themselves.
        prerelease = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in pre.split(".")
        )
    return AppVersion(int(major), int(minor), int(patch or 0), prerelease)
