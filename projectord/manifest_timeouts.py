"""Job timeouts from KV ``jobs``, cached in memory and kept fresh by a watch.

The events projector needs ``execute.timeout`` of the job behind every started
event to set the reaper deadline. Reading KV per message would cost a round
trip each; a watch keeps the cache current, and a miss falls back to one direct
read (a job created a moment ago may not have reached the watch yet).
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError

from .humantime import DurationError, parse_duration

log = structlog.get_logger("projectord.manifest_timeouts")
JOBS_BUCKET = "jobs"


def timeout_of(value: bytes | None) -> timedelta | None:
    """``execute.timeout`` of a Manifest JSON value; None when absent or invalid."""
    if not value:
        return None
    try:
        manifest = json.loads(value)
        return parse_duration(manifest["execute"]["timeout"])
    except (ValueError, KeyError, TypeError, DurationError):
        return None


class ManifestTimeouts:
    """``await lookup(job_id)`` -> the job's timeout, or None if unknown."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._cache: dict[str, timedelta | None] = {}
        self._task: asyncio.Task[None] | None = None
        self._kv = None

    async def _bucket(self):  # noqa: ANN202 - nats KeyValue
        if self._kv is None:
            self._kv = await self._js.key_value(JOBS_BUCKET)
        return self._kv

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="jobs-watch")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        while True:
            try:
                watcher = await (await self._bucket()).watchall()
                async for entry in watcher:
                    if entry is None:  # end of the initial values
                        continue
                    if entry.operation in ("DEL", "PURGE"):
                        self._cache.pop(entry.key, None)
                    else:
                        self._cache[entry.key] = timeout_of(entry.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # watch dropped: lookups fall back to direct reads
                log.warning("jobs_watch_failed", error=str(exc) or type(exc).__name__)
                self._cache.clear()
                await asyncio.sleep(2)

    async def lookup(self, job_id: str) -> timedelta | None:
        if job_id in self._cache:
            return self._cache[job_id]
        try:
            entry = await (await self._bucket()).get(job_id)
            timeout = timeout_of(entry.value)
        except (KeyNotFoundError, NotFoundError):
            timeout = None
        except Exception as exc:
            log.warning("jobs_read_failed", job_id=job_id, error=str(exc) or type(exc).__name__)
            return None  # not cached: try again on the next message
        self._cache[job_id] = timeout
        return timeout
