"""Committing a batch so that no message is lost and no bad message blocks the rest.

* A transient database error (locked, disk I/O, full) says nothing about the
  data: the same batch is retried with capped exponential backoff, forever,
  and nothing is acked meanwhile.
* Any other error means some message in the batch cannot be written. The batch
  is split in halves and each half committed on its own, recursively, until the
  culprit stands alone; it is then recorded as a reject in its own transaction
  and its batch-mates are committed normally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import structlog
from sqlalchemy import Connection

from .database import Writer, is_transient

log = structlog.get_logger("projectord.batch_commit")

T = TypeVar("T")


async def retry_transient(
    writer: Writer,
    fn: Callable[..., Any],
    *args: Any,
    max_backoff: float,
    log_context: dict[str, Any],
) -> Any:
    """Run ``fn(conn, *args)`` in a transaction, retrying transient errors forever.

    Non-transient errors propagate. Cancellation (a stop that ran out of time)
    propagates too, leaving the batch uncommitted and unacked for redelivery.
    """
    delay, attempt = 0.05, 0
    while True:
        try:
            return await writer.transaction(fn, *args)
        except Exception as exc:
            if not is_transient(exc):
                raise
            attempt += 1
            log.warning(
                "db_transient_error",
                attempt=attempt,
                retry_in_s=round(delay, 3),
                error=str(getattr(exc, "orig", exc)),
                **log_context,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)


async def commit_isolating(
    writer: Writer,
    items: Sequence[T],
    write: Callable[[Connection, Sequence[T]], None],
    write_poison: Callable[[Connection, T, str], None],
    *,
    max_backoff: float,
    log_context: dict[str, Any],
) -> int:
    """Commit ``items`` in order; return how many were turned into rejects.

    ``write(conn, subset)`` writes a contiguous subset; ``write_poison(conn,
    item, error)`` records one item that the database refused. If recording the
    poison item fails too, that is treated as transient and retried: giving up
    there would lose the message.
    """
    try:
        await retry_transient(
            writer, write, items, max_backoff=max_backoff, log_context=log_context
        )
        return 0
    except Exception as exc:
        if len(items) == 1:
            error = f"database refused the message: {getattr(exc, 'orig', exc)}"
            log.error("db_poison_message", error=error, **log_context)
            await _retry_always(writer, write_poison, items[0], error, max_backoff, log_context)
            return 1
        log.warning(
            "db_batch_failed_splitting",
            size=len(items),
            error=str(getattr(exc, "orig", exc)),
            **log_context,
        )
    mid = len(items) // 2
    first = await commit_isolating(
        writer, items[:mid], write, write_poison, max_backoff=max_backoff, log_context=log_context
    )
    second = await commit_isolating(
        writer, items[mid:], write, write_poison, max_backoff=max_backoff, log_context=log_context
    )
    return first + second


async def _retry_always(
    writer: Writer,
    fn: Callable[..., Any],
    item: Any,
    error: str,
    max_backoff: float,
    log_context: dict[str, Any],
) -> None:
    delay = 0.05
    while True:
        try:
            await writer.transaction(fn, item, error)
            return
        except Exception as exc:
            log.error(
                "db_reject_write_failed",
                error=str(getattr(exc, "orig", exc)),
                retry_in_s=round(delay, 3),
                **log_context,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
