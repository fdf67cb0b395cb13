"""``host_perf.>`` (core NATS) -> ``host_perf_samples``, first writer wins per (pc, at)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.sqlite import insert

from ..schema import host_perf_samples
from . import message_fields as f
from .contract import CoreProjector, Delivery, decode_object

INT_METRICS = (
    "cpu_count",
    "mem_used_bytes",
    "mem_total_bytes",
    "swap_used_bytes",
    "swap_total_bytes",
)
NUM_METRICS = (
    "cpu_pct",
    "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
)


def decode(delivery: Delivery) -> dict[str, Any]:
    """A sample; a bare ``{pc_id, at}`` is valid and stores a row of NULLs."""
    body = decode_object(delivery)
    row: dict[str, Any] = {
        "pc_id": f.req_str(body, "pc_id", non_empty=True),
        "at": f.req_ts(body, "at"),
    }
    row.update({k: f.opt_int(body, k) for k in INT_METRICS})
    row.update({k: f.opt_num(body, k) for k in NUM_METRICS})
    return row


_INSERT = insert(host_perf_samples).on_conflict_do_nothing()


def apply(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    conn.execute(_INSERT, list(records))


PROJECTOR = CoreProjector(
    name="host_perf",
    subject="host_perf.>",
    decode=decode,
    apply=apply,
    key=lambda r: (r["pc_id"], r["at"]),
    merge=lambda old, _new: old,  # first writer wins, as in the table
)
