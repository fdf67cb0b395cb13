"""``process_perf.>`` (core NATS) -> ``process_perf_samples``, keyed (pc, at, pid).

Sent only while investigation mode is on. The original wrote one statement per
message; here messages share the core micro-batch like host_perf.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.sqlite import insert

from ..schema import process_perf_samples
from . import message_fields as f
from .contract import CoreProjector, Delivery, Rejected, decode_object


def decode(delivery: Delivery) -> list[dict[str, Any]]:
    body = decode_object(delivery)
    pc_id = f.req_str(body, "pc_id", non_empty=True)
    at = f.req_ts(body, "at")
    processes = body.get("processes")
    if not isinstance(processes, list):
        raise Rejected("field 'processes': expected an array")
    rows = []
    for n, proc in enumerate(processes):
        if not isinstance(proc, dict):
            raise Rejected(f"field 'processes[{n}]': expected an object")
        try:
            rows.append(
                {
                    "pc_id": pc_id,
                    "at": at,
                    "pid": f.req_int(proc, "pid"),
                    "name": f.req_str(proc, "name"),
                    "cpu_pct": f.req_num(proc, "cpu_pct"),
                    "rss_bytes": f.req_int(proc, "rss_bytes"),
                    "disk_read_bytes_per_sec": f.opt_num(proc, "disk_read_bytes_per_sec"),
                    "disk_written_bytes_per_sec": f.opt_num(proc, "disk_written_bytes_per_sec"),
                }
            )
        except Rejected as exc:
            raise Rejected(f"processes[{n}]: {exc}") from None
    return rows


_INSERT = insert(process_perf_samples).on_conflict_do_nothing()


def apply(conn: Connection, records: Sequence[list[dict[str, Any]]]) -> None:
    rows = [row for message in records for row in message]
    if rows:
        conn.execute(_INSERT, rows)


PROJECTOR = CoreProjector(
    name="process_perf",
    subject="process_perf.>",
    decode=decode,
    apply=apply,
)
