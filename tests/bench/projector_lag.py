"""Projector lag as the benchmarks measure it, sampled from the broker and the database.

* JetStream projectors: 0 when the checkpoint is at the stream's last sequence,
  else the age of the oldest message not yet applied (now minus the publish time
  of checkpoint + 1);
* heartbeats: the age of the newest heartbeat in ``agents`` (it includes the
  agents' own spacing and the 1 s flush).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from projectord.timestamps import parse_rfc3339

STREAMS = {"results": "RESULTS", "events": "EVENTS", "obs_events": "OBS_EVENTS"}


def empty_lags() -> dict[str, list[float]]:
    return {name: [] for name in (*STREAMS, "heartbeat")}


async def sample_lag(js: Any, ro: sqlite3.Connection, lags: dict[str, list[float]]) -> None:
    """Append one lag sample (seconds) per projector to ``lags``."""
    now = datetime.now(UTC)
    for name, stream in STREAMS.items():
        row = ro.execute(
            "SELECT last_seq FROM projector_checkpoints WHERE projector = ?", (name,)
        ).fetchone()
        applied = row[0] if row else 0
        last = (await js.stream_info(stream)).state.last_seq
        if applied >= last:
            lags[name].append(0.0)
        else:
            msg = await js.get_msg(stream, applied + 1)
            lags[name].append((now - msg.time).total_seconds() if msg.time else 0.0)
    newest = ro.execute("SELECT MAX(last_heartbeat) FROM agents").fetchone()[0]
    if newest:
        lags["heartbeat"].append((now - parse_rfc3339(newest)).total_seconds())


def pctl(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank); 0 for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0
