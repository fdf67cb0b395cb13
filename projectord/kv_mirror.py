"""Mirrors of KV buckets into ``kv_entries``, for apiserver and the scheduler.

apiserver has no broker connection, so what the dashboard shows of the
``schedules``, ``jobs``, ``fleet_config``, ``agent_groups`` and
``agent_groups_derived`` buckets comes from here. Per bucket: open a watch,
load every current value, reconcile the table with that snapshot (rows of keys
no longer in the bucket are deleted), then apply live changes. A watch that
fails is reopened, and every ``resync_s`` the watch is reopened anyway: a live
watch can miss a delete (ordered consumer reset, broker restart), a reconcile
cannot.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.kv import KV_DEL, KV_PURGE
from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.sqlite import insert

from .database import Writer
from .schema import kv_entries, kv_mirror_status
from .timestamps import format_db, now_db

log = structlog.get_logger("projectord.kv_mirror")

MIRRORED_BUCKETS = ("schedules", "jobs", "fleet_config", "agent_groups", "agent_groups_derived")
_CHUNK = 500  # keys per DELETE
_MAX_CHANGES = 1000  # live changes per transaction


@dataclass(frozen=True)
class KvValue:
    """One key's current value; ``written_at`` in storage format."""

    value: str
    revision: int
    written_at: str


def value_of(entry: Any) -> KvValue | None:
    """A watch entry as a value, or None for a delete or purge marker."""
    if entry.operation in (KV_DEL, KV_PURGE):
        return None
    raw: bytes = entry.value or b""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        # The contract says values are UTF-8; keep what can be shown and say so.
        log.warning("kv_value_not_utf8", bucket=entry.bucket, key=entry.key)
        text = raw.decode(errors="replace")
    return KvValue(text, entry.revision, format_db(entry.created))


_c = kv_entries.c
_UPSERT = insert(kv_entries)
_UPSERT = _UPSERT.on_conflict_do_update(
    index_elements=[_c.bucket, _c.key],
    set_={
        "value": _UPSERT.excluded.value,
        "revision": _UPSERT.excluded.revision,
        "written_at": _UPSERT.excluded.written_at,
    },
)


def _row(bucket: str, key: str, v: KvValue) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "key": key,
        "value": v.value,
        "revision": v.revision,
        "written_at": v.written_at,
    }


def _set_status(conn: Connection, bucket: str, **values: Any) -> None:
    count = conn.execute(
        select(func.count()).select_from(kv_entries).where(_c.bucket == bucket)
    ).scalar_one()
    stmt = insert(kv_mirror_status).values(bucket=bucket, key_count=count, **values)
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["bucket"], set_={"key_count": count, **values})
    )


def reconcile(conn: Connection, bucket: str, snapshot: Mapping[str, KvValue]) -> tuple[int, int]:
    """Make the bucket's rows equal ``snapshot``; return (rows written, rows deleted).

    Rows already at the snapshot's revision are left alone, so a resync of an
    unchanged 30 000-key bucket writes nothing.
    """
    existing = dict(conn.execute(select(_c.key, _c.revision).where(_c.bucket == bucket)).all())
    changed = [_row(bucket, k, v) for k, v in snapshot.items() if existing.get(k) != v.revision]
    if changed:
        conn.execute(_UPSERT, changed)
    gone = [k for k in existing if k not in snapshot]
    for start in range(0, len(gone), _CHUNK):
        chunk = gone[start : start + _CHUNK]
        conn.execute(delete(kv_entries).where(_c.bucket == bucket, _c.key.in_(chunk)))
    _set_status(conn, bucket, synced_at=now_db(), error=None, error_at=None)
    return len(changed), len(gone)


def apply_changes(
    conn: Connection, bucket: str, changes: Sequence[tuple[str, KvValue | None]]
) -> None:
    """Apply live changes in order: a value is upserted, None deletes the key."""
    for key, value in changes:
        if value is None:
            conn.execute(delete(kv_entries).where(_c.bucket == bucket, _c.key == key))
        else:
            conn.execute(_UPSERT, _row(bucket, key, value))
    _set_status(conn, bucket, changed_at=now_db())


def record_error(conn: Connection, bucket: str, error: str) -> None:
    _set_status(conn, bucket, error=error, error_at=now_db())


class KvMirror:
    """Keeps one bucket's rows in step with the bucket until ``stop`` is set."""

    def __init__(
        self,
        js: JetStreamContext,
        writer: Writer,
        bucket: str,
        resync_s: float,
        stop: asyncio.Event,
    ) -> None:
        self.js = js
        self.writer = writer
        self.bucket = bucket
        self.resync_s = resync_s
        self.stop = stop
        self.log = log.bind(bucket=bucket)

    async def run(self) -> None:
        delay = 1.0
        while not self.stop.is_set():
            try:
                await self.watch_until_resync()
                delay = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = str(exc) or type(exc).__name__
                self.log.warning("kv_mirror_failed", error=error, retry_in_s=delay)
                try:
                    await self.writer.transaction(record_error, self.bucket, error)
                except Exception as db_exc:
                    self.log.warning("kv_mirror_status_failed", error=str(db_exc))
                try:
                    await asyncio.wait_for(self.stop.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, 30)

    async def watch_until_resync(self) -> None:
        """One watch: load and reconcile, then follow changes until resync or stop."""
        kv = await self.js.key_value(self.bucket)
        watcher = await kv.watchall()
        try:
            snapshot: dict[str, KvValue] = {}
            while (entry := await watcher.updates(timeout=30)) is not None:
                value = value_of(entry)
                if value is None:
                    snapshot.pop(entry.key, None)
                else:
                    snapshot[entry.key] = value
            written, deleted = await self.writer.transaction(reconcile, self.bucket, snapshot)
            self.log.info("kv_mirror_synced", keys=len(snapshot), written=written, deleted=deleted)
            deadline = time.monotonic() + self.resync_s
            while not self.stop.is_set() and time.monotonic() < deadline:
                changes = await self._collect(watcher)
                if changes:
                    await self.writer.transaction(apply_changes, self.bucket, changes)
        finally:
            await watcher.stop()

    async def _collect(self, watcher: Any) -> list[tuple[str, KvValue | None]]:
        """Changes that arrive within a second, up to a batch's worth."""
        changes: list[tuple[str, KvValue | None]] = []
        timeout = 1.0
        while len(changes) < _MAX_CHANGES:
            try:
                entry = await watcher.updates(timeout=timeout)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            if entry is None:
                continue
            changes.append((entry.key, value_of(entry)))
            timeout = 0.01  # a burst: take what is already there, then commit
        return changes
