"""The fleet tier in tests: a Redis cache for ``MAINTENANCE_STATE_CACHE`` under a key prefix of its
own (deleted afterwards), and the raw Redis keys behind Django's cache keys."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import redis

from maintenance_flags.fleet import LEASE_KEY, RECORD_KEY

REDIS_PORT = 6379
ALIAS = "state"
#: The client timeouts the docs advise: a cache that does not answer costs a call at most this long.
CLIENT_TIMEOUT = 0.1


def redis_url(port: int = REDIS_PORT) -> str:
    return f"redis://127.0.0.1:{port}/0"


def redis_cache(prefix: str, port: int = REDIS_PORT) -> dict[str, Any]:
    """A ``CACHES`` entry: Django's own Redis backend with short client timeouts."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": redis_url(port),
        "KEY_PREFIX": prefix,
        "OPTIONS": {"socket_timeout": CLIENT_TIMEOUT, "socket_connect_timeout": CLIENT_TIMEOUT},
    }


@dataclass
class RedisKeys:
    """The keys of one test's cache (``KEY_PREFIX`` = ``prefix``), read and written behind Django."""

    prefix: str
    client: redis.Redis

    def raw(self, key: str) -> str:
        return f"{self.prefix}:1:{key}"  # Django's default KEY_FUNCTION, VERSION 1

    def record(self) -> Any:
        """The shared record as stored (unpickled as Django's Redis backend would), or None."""
        value = self.client.get(self.raw(RECORD_KEY))
        return None if value is None else pickle.loads(cast("bytes", value))

    def stamp(self) -> str | None:
        record = self.record()
        return None if record is None else str(record[1])

    def write_raw(self, value: bytes) -> None:
        self.client.set(self.raw(RECORD_KEY), value)

    def lease_held(self) -> bool:
        return bool(self.client.exists(self.raw(LEASE_KEY)))

    def take_lease(self, seconds: int = 10) -> None:
        """As another process refreshing the copy would."""
        self.client.set(self.raw(LEASE_KEY), b"1", ex=seconds)

    def drop_lease(self) -> None:
        self.client.delete(self.raw(LEASE_KEY))


@contextmanager
def redis_keys() -> Iterator[RedisKeys]:
    """A unique key prefix; every key under it is deleted at the end."""
    prefix = f"mf-fleet-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url())
    try:
        yield RedisKeys(prefix, client)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
