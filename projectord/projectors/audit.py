"""AUDIT stream -> ``audit_log``, deduplicated on the JetStream stream sequence.

Audit bodies carry no id of their own, so the stream sequence is the identity:
a redelivered or replayed message hits the partial unique index and is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, update
from sqlalchemy.dialects.sqlite import insert

from ..schema import audit_log
from . import message_fields as f
from .contract import Delivery, JetStreamProjector, Rejected, decode_object


def decode(delivery: Delivery) -> dict[str, Any]:
    body = decode_object(delivery)
    if "payload" not in body:
        raise Rejected("field 'payload': required but missing")
    return {
        "actor": f.req_str(body, "actor", non_empty=True),
        "action": f.req_str(body, "action", non_empty=True),
        "target": f.opt_str(body, "target"),
        "payload": f.json_text(body["payload"]),
        "occurred_at": f.req_ts(body, "occurred_at"),
        "stream_seq": delivery.seq,
    }


_INSERT = insert(audit_log).on_conflict_do_nothing()


def apply(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    conn.execute(_INSERT, list(records))


def forget_sequences(conn: Connection) -> None:
    """A recreated AUDIT stream reuses sequence numbers; old rows must not collide."""
    conn.execute(
        update(audit_log).where(audit_log.c.stream_seq.is_not(None)).values(stream_seq=None)
    )


PROJECTOR = JetStreamProjector(
    name="audit",
    stream="AUDIT",
    durable="backend_audit_projector",
    filter_subject=None,
    decode=decode,
    apply=apply,
    on_stream_reset=forget_sequences,
)
