"""OBS_EVENTS ``obs.>`` -> ``obs_events``, deduplicated on (pc_id, source, event_record_id).

Agents re-send events after reconnects; the unique key makes that free. Events
without a record id cannot be recognised again and are kept as sent (SQLite
treats NULLs as distinct), exactly as the original does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.sqlite import insert

from ..schema import obs_events
from . import message_fields as f
from .contract import Delivery, JetStreamProjector, decode_object


def decode(delivery: Delivery) -> dict[str, Any]:
    body = decode_object(delivery)
    return {
        "pc_id": f.req_str(body, "pc_id", non_empty=True),
        "at": f.req_ts(body, "at"),
        "kind": f.req_str(body, "kind", non_empty=True),
        "source": f.req_str(body, "source", non_empty=True),
        "event_record_id": f.opt_str(body, "event_record_id"),
        "payload": f.json_text(body.get("payload")),
    }


_INSERT = insert(obs_events).on_conflict_do_nothing()


def apply(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    conn.execute(_INSERT, list(records))


PROJECTOR = JetStreamProjector(
    name="obs_events",
    stream="OBS_EVENTS",
    durable="backend_obs_events_projector",
    filter_subject="obs.>",
    decode=decode,
    apply=apply,
)
