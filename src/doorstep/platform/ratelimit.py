"""Fixed-window rate limits: in-process in the embedded mode, shared through Redis in production."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis


class RateLimiter(Protocol):
    def hit(self, key: str, *, limit: int, window: int) -> int | None:
        """Count one attempt. Returns None when allowed, else seconds until the window resets."""

    def blocked(self, key: str, *, limit: int) -> int | None:
        """Seconds until `key` may try again when it has used its limit, else None."""

    def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def _current(self, key: str, now: float) -> tuple[float, int] | None:
        entry = self._windows.get(key)
        if entry is None or entry[0] <= now:
            self._windows.pop(key, None)
            return None
        return entry

    def hit(self, key: str, *, limit: int, window: int) -> int | None:
        now = time.monotonic()
        with self._lock:
            entry = self._current(key, now)
            ends, count = entry if entry else (now + window, 0)
            count += 1
            self._windows[key] = (ends, count)
            return max(1, round(ends - now)) if count > limit else None

    def blocked(self, key: str, *, limit: int) -> int | None:
        now = time.monotonic()
        with self._lock:
            entry = self._current(key, now)
        if entry is None or entry[1] < limit:
            return None
        return max(1, round(entry[0] - now))

    def reset(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)


class RedisRateLimiter:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = f"{prefix}:ratelimit:"

    def hit(self, key: str, *, limit: int, window: int) -> int | None:
        name = self._prefix + key
        pipe = self._redis.pipeline()
        pipe.incr(name)
        pipe.expire(name, window, nx=True)
        pipe.ttl(name)
        count, _, ttl = pipe.execute()
        return max(1, int(ttl)) if int(count) > limit else None

    def blocked(self, key: str, *, limit: int) -> int | None:
        name = self._prefix + key
        pipe = self._redis.pipeline()
        pipe.get(name)
        pipe.ttl(name)
        count, ttl = pipe.execute()
        if count is None or int(count) < limit:
            return None
        return max(1, int(ttl))

    def reset(self, key: str) -> None:
        self._redis.delete(self._prefix + key)
