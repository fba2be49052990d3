"""Tasks for the demo and the background-work tests: each run is written down in Redis."""

from __future__ import annotations

import os
import time

import redis
from celery import shared_task


def journal() -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("MF_REDIS_URL", "redis://127.0.0.1:6379/0"))


@shared_task(name="testproject.record")
def record(key: str, label: str, seconds: float = 0.0) -> str:
    """Append "label started finished" (Unix times) to the Redis list ``key``, after ``seconds`` of work."""
    started = time.time()
    client = journal()
    client.rpush(f"{key}:started", f"{label} {started:.3f}")
    time.sleep(seconds)
    client.rpush(key, f"{label} {started:.3f} {time.time():.3f}")
    client.close()
    return label


@shared_task(name="testproject.noop")
def noop() -> None:
    """Nothing: the benchmark's per-task cost."""
