"""The fleet's per-minute host-perf rollup kept by the host_perf projector.

The reference is a GROUP BY over host_perf_samples per minute: whatever the
projector stored, the rollup must hold exactly its per-minute sums, non-NULL
counts and maxima, with ignored duplicates counted once.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from api_harness import NOW, ts
from harness import query, wait_until
from sqlalchemy import func, select
from test_core_projectors import core_warmup
from wire import body, db_ts, host_perf

from projectord.housekeeping.retention import RETENTION, cutoffs, delete_oldest
from projectord.projectors import host_perf as projector
from projectord.schema import ROLLUP_METRICS, host_perf_rollup, host_perf_samples

COLUMNS = [c.name for c in host_perf_samples.columns]


def sample(pc_id: str, at: str, **metrics) -> dict:
    """A decoded sample as the projector's decode returns it: every column present."""
    return {c: None for c in COLUMNS} | {"pc_id": pc_id, "at": at} | metrics


def reference(conn_or_path) -> list[tuple]:
    """The rollup recomputed from the stored samples, one row per minute."""
    parts = ", ".join(f"SUM({m}), COUNT({m}), MAX({m})" for m in ROLLUP_METRICS)
    sql = (
        f"SELECT substr(at, 1, 16) || ':00.000000+00:00', COUNT(*), {parts}"
        " FROM host_perf_samples GROUP BY 1 ORDER BY 1"
    )
    return _rows(conn_or_path, sql)


def rollup(conn_or_path) -> list[tuple]:
    columns = ", ".join(f"{m}_sum, {m}_count, {m}_max" for m in ROLLUP_METRICS)
    sql = f"SELECT bucket_at, samples, {columns} FROM host_perf_rollup ORDER BY bucket_at"
    return _rows(conn_or_path, sql)


def _rows(conn_or_path, sql: str) -> list[tuple]:
    if hasattr(conn_or_path, "exec_driver_sql"):
        return [tuple(r) for r in conn_or_path.exec_driver_sql(sql)]
    return query(conn_or_path, sql)


# --------------------------------------------------------------------------- pure


def test_minute_of_cuts_stored_text_to_the_minute():
    assert projector.minute_of("2026-11-22T11:59:59.999999+00:00") == (
        "2026-11-22T11:59:00.000000+00:00"
    )


def test_minute_increments_sum_count_and_max_non_null_values_per_minute():
    width = len(ROLLUP_METRICS)
    cpu, mem = ROLLUP_METRICS.index("cpu_pct"), ROLLUP_METRICS.index("mem_used_bytes")

    def row(at, cpu_pct=None, mem_used=None):
        values = [None] * width
        values[cpu], values[mem] = cpu_pct, mem_used
        return (at, *values)

    rows = [
        row(ts(timedelta(seconds=1)), 10.0, 100),
        row(ts(timedelta(seconds=59)), 30.5, None),
        row(ts(timedelta(seconds=61)), None, None),
        row(ts(timedelta(seconds=-1)), -2.0, 7),
    ]
    out = {r["bucket_at"]: r for r in projector.minute_increments(rows)}
    assert list(out) == sorted(out), "minutes come out in order"
    this = out[ts()]
    assert this["samples"] == 2
    assert (this["cpu_pct_sum"], this["cpu_pct_count"], this["cpu_pct_max"]) == (40.5, 2, 30.5)
    assert (this["mem_used_bytes_sum"], this["mem_used_bytes_count"]) == (100, 1)
    nulls = out[ts(timedelta(minutes=1))]
    assert nulls["samples"] == 1
    assert (nulls["cpu_pct_sum"], nulls["cpu_pct_count"], nulls["cpu_pct_max"]) == (None, 0, None)
    before = out[ts(timedelta(minutes=-1))]
    assert (before["cpu_pct_sum"], before["cpu_pct_max"], before["mem_used_bytes_max"]) == (
        -2.0,
        -2.0,
        7,
    )
    assert projector.minute_increments([]) == []


# --------------------------------------------------------------------------- apply


def _batch(seed: int, n: int) -> list[dict]:
    """``n`` samples spread over a few minutes; some metrics NULL, values exact in binary."""
    out = []
    for i in range(n):
        k = seed * 1000 + i
        out.append(
            sample(
                f"pc{k % 7}",
                ts(timedelta(seconds=(k * 13) % 240)),
                cpu_pct=None if k % 5 == 0 else (k % 37) * 0.25,
                mem_used_bytes=(k % 11) * 2**20,
                disk_read_bytes_per_sec=None if k % 2 else float(k % 19),
                net_tx_bytes_per_sec=-1.5 if k % 3 == 0 else None,
            )
        )
    return out


def test_apply_keeps_the_rollup_equal_to_the_stored_samples(api_db):
    first, second = _batch(1, 120), _batch(2, 120)
    with api_db.begin() as conn:
        projector.apply(conn, first)
    with api_db.begin() as conn:
        assert rollup(conn) == reference(conn)
        stored = conn.execute(select(func.count()).select_from(host_perf_samples)).scalar()
    # Later batches: duplicates of stored samples (other values, ignored), a
    # duplicate within the batch, and new samples in minutes already rolled up.
    again = [dict(s, cpu_pct=99.0) for s in first[:40]]
    with api_db.begin() as conn:
        projector.apply(conn, again + second + second[:3])
    with api_db.begin() as conn:
        assert rollup(conn) == reference(conn)
        total = conn.execute(select(func.sum(host_perf_rollup.c.samples))).scalar()
        assert total == conn.execute(select(func.count()).select_from(host_perf_samples)).scalar()
        assert total > stored
        peak = conn.execute(select(func.max(host_perf_rollup.c.cpu_pct_max))).scalar()
        assert peak == 36 * 0.25, "the ignored duplicates' 99.0 never reached the rollup"


def test_apply_of_only_duplicates_changes_nothing(api_db):
    rows = _batch(3, 30)
    with api_db.begin() as conn:
        projector.apply(conn, rows)
        before = rollup(conn)
        projector.apply(conn, [dict(r, cpu_pct=1.0, mem_used_bytes=1) for r in rows])
        assert rollup(conn) == before == reference(conn)


def test_a_rolled_back_batch_leaves_no_rollup(api_db):
    with pytest.raises(RuntimeError), api_db.begin() as conn:
        projector.apply(conn, _batch(4, 10))
        raise RuntimeError("the batch's transaction fails after apply")
    with api_db.begin() as conn:
        assert rollup(conn) == [] == reference(conn)


# --------------------------------------------------------------------------- retention


def test_retention_deletes_old_rollup_minutes_with_the_host_perf_days(api_db):
    rules = {r.table.name: r for r in RETENTION}
    assert rules["host_perf_rollup"].days_key == rules["host_perf_samples"].days_key
    options = {r.days_key: 0 for r in RETENTION} | {"host_perf_days": 30}
    cutoff = cutoffs(options, NOW)[rules["host_perf_rollup"]]
    old = [sample("pc1", ts(timedelta(days=-31, minutes=m)), cpu_pct=1.0) for m in range(5)]
    new = [sample("pc1", ts(timedelta(days=-29, minutes=m)), cpu_pct=2.0) for m in range(3)]
    with api_db.begin() as conn:
        projector.apply(conn, old + new)
        r = host_perf_rollup
        assert delete_oldest(conn, r, r.c.bucket_at, cutoff, 2) == 2
        assert delete_oldest(conn, r, r.c.bucket_at, cutoff, 100) == 3
        kept = list(conn.execute(select(r.c.bucket_at).order_by(r.c.bucket_at)).scalars())
    assert kept == [s["at"] for s in new]


# --------------------------------------------------------------------------- projectord


async def test_projectord_rolls_up_what_it_stores(projectord_factory, nc, db_path):
    await projectord_factory(flush_interval_ms=50)
    await core_warmup(nc, db_path)
    for pc, offset, cpu in (("pc1", 0, 10.0), ("pc2", 30, 20.5), ("pc3", 59, None)):
        await nc.publish(f"host_perf.{pc}", body(host_perf(pc, at=offset, cpu_pct=cpu)))
    await nc.publish("host_perf.pc1", body(host_perf("pc1", at=60, cpu_pct=4.0)))
    await wait_until(lambda: query(db_path, "SELECT COUNT(*) FROM host_perf_samples")[0][0] >= 5)
    # Redelivered samples (other values) in a later flush, and a new one.
    await nc.publish("host_perf.pc1", body(host_perf("pc1", at=0, cpu_pct=90.0)))
    await nc.publish("host_perf.pc2", body(host_perf("pc2", at=30, cpu_pct=90.0)))
    await nc.publish("host_perf.pc4", body(host_perf("pc4", at=45, cpu_pct=1.5)))
    await wait_until(
        lambda: (
            query(db_path, "SELECT COUNT(*) FROM host_perf_samples WHERE pc_id = 'pc4'") == [(1,)]
        )
    )
    assert rollup(db_path) == reference(db_path)
    minute = db_ts(0)[:16] + ":00.000000+00:00"
    got = query(
        db_path,
        "SELECT samples, cpu_pct_sum, cpu_pct_count, cpu_pct_max FROM host_perf_rollup"
        " WHERE bucket_at = ?",
        [minute],
    )
    assert got == [(4, 10.0 + 20.5 + 1.5, 3, 20.5)]
