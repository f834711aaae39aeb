"""Fixed-window counters in Redis, shared by every API process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis import Redis

from fieldcast.errors import RateLimited


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: int


class RateLimiter:
    def __init__(self, redis: Redis, *, prefix: str = "fieldcast:rl") -> None:
        self.redis = redis
        self.prefix = prefix

    def _key(self, scope: str, subject: str) -> str:
        # Subjects can be emails or addresses: keep them out of Redis in clear.
        digest = hashlib.sha256(subject.encode()).hexdigest()[:32]
        return f"{self.prefix}:{scope}:{digest}"

    def check(self, scope: str, subject: str, window: Window) -> None:
        """Raise RateLimited when the subject has used up its window, without counting."""
        key = self._key(scope, subject)
        with self.redis.pipeline() as pipe:
            pipe.get(key)
            pipe.ttl(key)
            raw, ttl = pipe.execute()
        if raw is not None and int(raw) >= window.limit:
            raise RateLimited(
                "Too many attempts; wait before trying again.",
                retry_after=ttl if ttl and ttl > 0 else window.seconds,
            )

    def hit(self, scope: str, subject: str, window: Window) -> int:
        """Count one event; returns the count in the current window."""
        key = self._key(scope, subject)
        with self.redis.pipeline() as pipe:
            # SET NX EX starts the window; EXPIRE NX would need Redis 7 (the embedded one is 6.2).
            pipe.set(key, 0, ex=window.seconds, nx=True)
            pipe.incr(key)
            _, count = pipe.execute()
        return int(count)

    def take(self, scope: str, subject: str, window: Window, amount: int = 1) -> int:
        """Count `amount` events in one round trip, or raise RateLimited (counting nothing)
        when they would take the subject past its window. Returns the count."""
        key = self._key(scope, subject)
        with self.redis.pipeline() as pipe:
            pipe.set(key, 0, ex=window.seconds, nx=True)
            pipe.incrby(key, amount)
            pipe.ttl(key)
            _, count, ttl = pipe.execute()
        if int(count) > window.limit:
            self.redis.decrby(key, amount)
            raise RateLimited(
                "Too many attempts; wait before trying again.",
                retry_after=ttl if ttl and ttl > 0 else window.seconds,
            )
        return int(count)

    def reset(self, scope: str, subject: str) -> None:
        self.redis.delete(self._key(scope, subject))
