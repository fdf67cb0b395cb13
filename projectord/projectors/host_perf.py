"""``host_perf.>`` (core NATS) -> ``host_perf_samples``, first writer wins per (pc, at).

The same transaction keeps ``host_perf_rollup``, the fleet's per-minute sums,
counts and maxima, so the fleet chart need not read every sample. Only samples
actually inserted are added: a duplicate (pc, at) is ignored by the insert and
so never counted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, func
from sqlalchemy.dialects.sqlite import insert

from ..schema import ROLLUP_METRICS, host_perf_rollup, host_perf_samples
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


# RETURNING yields only the rows inserted, not those ON CONFLICT ignored.
_INSERT = (
    insert(host_perf_samples)
    .on_conflict_do_nothing()
    .returning(host_perf_samples.c.at, *(host_perf_samples.c[m] for m in ROLLUP_METRICS))
)


def minute_of(at: str) -> str:
    """The start of the UTC minute of a stored timestamp, as stored text.

    Stored text has one fixed format (``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``),
    so the minute is its first 16 characters.
    """
    return at[:16] + ":00.000000+00:00"


def minute_increments(inserted: Iterable[Row[Any] | Sequence[Any]]) -> list[dict[str, Any]]:
    """Per minute of the inserted ``(at, *ROLLUP_METRICS)`` rows: what to add to the rollup.

    ``samples`` counts rows; per metric ``_sum`` and ``_max`` are None when no
    row has a value, and ``_count`` counts the non-NULL values.
    """
    acc: dict[str, list[Any]] = {}
    width = len(ROLLUP_METRICS)
    for at, *values in inserted:
        minute = acc.get(minute_of(at))
        if minute is None:
            minute = acc[minute_of(at)] = [0, [None] * width, [0] * width, [None] * width]
        minute[0] += 1
        sums, counts, peaks = minute[1], minute[2], minute[3]
        for i, value in enumerate(values):
            if value is None:
                continue
            if counts[i]:
                sums[i] += value
                if value > peaks[i]:
                    peaks[i] = value
            else:
                sums[i] = peaks[i] = value
            counts[i] += 1
    out = []
    for bucket_at, (samples, sums, counts, peaks) in sorted(acc.items()):
        row: dict[str, Any] = {"bucket_at": bucket_at, "samples": samples}
        for i, metric in enumerate(ROLLUP_METRICS):
            row[f"{metric}_sum"] = sums[i]
            row[f"{metric}_count"] = counts[i]
            row[f"{metric}_max"] = peaks[i]
        out.append(row)
    return out


def _rollup_upsert() -> Any:
    """Insert a minute's increments, or add them to the minute's existing row."""
    stmt = insert(host_perf_rollup)
    old, new = host_perf_rollup.c, stmt.excluded
    add: dict[str, Any] = {"samples": old.samples + new.samples}
    for m in ROLLUP_METRICS:
        total, count, peak = f"{m}_sum", f"{m}_count", f"{m}_max"
        # NULL means "no value yet" on either side; SQLite's max(a, NULL) is NULL.
        add[total] = func.coalesce(old[total] + new[total], old[total], new[total])
        add[count] = func.coalesce(old[count], 0) + new[count]
        add[peak] = func.coalesce(func.max(old[peak], new[peak]), old[peak], new[peak])
    return stmt.on_conflict_do_update(index_elements=[old.bucket_at], set_=add)


_UPSERT_ROLLUP = _rollup_upsert()


def apply(conn: Connection, records: Sequence[dict[str, Any]]) -> None:
    """Insert the samples (first writer wins) and add the inserted ones to the rollup."""
    if not records:
        return
    inserted = conn.execute(_INSERT, list(records)).all()
    increments = minute_increments(inserted)
    if increments:
        conn.execute(_UPSERT_ROLLUP, increments)


PROJECTOR = CoreProjector(
    name="host_perf",
    subject="host_perf.>",
    decode=decode,
    apply=apply,
    key=lambda r: (r["pc_id"], r["at"]),
    merge=lambda old, _new: old,  # first writer wins, as in the table
)
