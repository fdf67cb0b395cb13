"""Projector bookkeeping rows: checkpoints, rejects and gaps.

All three are written inside the transaction of the batch they describe, so
the database can never claim a message applied that is not, or lose the record
of a message it refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select
from sqlalchemy.dialects.sqlite import insert

from .projectors.contract import Delivery
from .schema import projector_checkpoints, projector_gaps, projector_rejects
from .timestamps import now_db

_cp = projector_checkpoints.c


@dataclass(frozen=True)
class Checkpoint:
    last_seq: int
    stream_created: str | None


def read_checkpoint(conn: Connection, projector: str) -> Checkpoint:
    """The committed position of ``projector``; 0 when it never committed."""
    row = conn.execute(
        select(_cp.last_seq, _cp.stream_created).where(_cp.projector == projector)
    ).first()
    return Checkpoint(row[0], row[1]) if row else Checkpoint(0, None)


def write_checkpoint(
    conn: Connection,
    projector: str,
    stream: str,
    durable: str,
    last: Delivery,
    stream_created: str | None,
) -> None:
    """Advance the checkpoint to ``last`` (never backwards within a stream's life)."""
    stmt = insert(projector_checkpoints).values(
        projector=projector,
        stream=stream,
        durable=durable,
        last_seq=last.seq,
        last_message_at=last.published_at,
        stream_created=stream_created,
        updated_at=now_db(),
    )
    excluded = stmt.excluded
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[_cp.projector],
            set_={
                "last_seq": func.max(_cp.last_seq, excluded.last_seq),
                "last_message_at": excluded.last_message_at,
                "stream_created": excluded.stream_created,
                "updated_at": excluded.updated_at,
            },
        )
    )


def reset_checkpoint(conn: Connection, projector: str) -> None:
    """Forget the position (the stream was recreated, so old sequences mean nothing)."""
    conn.execute(delete(projector_checkpoints).where(_cp.projector == projector))


def record_reject(
    conn: Connection,
    projector: str,
    stream: str | None,
    delivery: Delivery,
    error: str,
    payload_limit: int,
) -> None:
    """Keep a refused message: its position, the reason and the first bytes of its body."""
    conn.execute(
        insert(projector_rejects)
        .values(
            projector=projector,
            stream=stream,
            stream_seq=delivery.seq,
            subject=delivery.subject,
            error=error[:4000],
            payload=bytes(delivery.data[:payload_limit]),
            payload_size=len(delivery.data),
            published_at=delivery.published_at,
            recorded_at=now_db(),
        )
        .on_conflict_do_nothing()
    )


def record_gap(conn: Connection, projector: str, stream: str, from_seq: int, to_seq: int) -> None:
    """Note that stream sequences ``from_seq..to_seq`` aged out before being applied."""
    conn.execute(
        insert(projector_gaps)
        .values(
            projector=projector,
            stream=stream,
            from_seq=from_seq,
            to_seq=to_seq,
            missing=to_seq - from_seq + 1,
            detected_at=now_db(),
        )
        .on_conflict_do_nothing()
    )
