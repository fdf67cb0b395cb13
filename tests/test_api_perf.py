"""``/api/agents/{pc_id}/perf``, ``/api/perf/fleet``, ``/api/perf/top``,
``/api/perf/active-investigations`` (api.md 3.4).

Samples are written through the host_perf projector's own ``apply``, so the
fleet rollup is kept exactly as projectord keeps it; the raw-sample path of
the fleet chart is the reference the rollup path must reproduce.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_harness import NOW, client, seed, ts
from sqlalchemy import delete

from apiserver.readonly_db import ReadDatabase
from apiserver.routes.perf import fleet_points_raw, rollup_applies
from apiserver.time_buckets import chart_window
from projectord.projectors import host_perf as projector
from projectord.schema import agents, host_perf_samples, process_perf_samples
from projectord.timestamps import format_db, parse_rfc3339

COLUMNS = [c.name for c in host_perf_samples.columns]
POINT_METRICS = (
    "cpu_pct",
    "mem_used_bytes",
    "mem_total_bytes",
    "swap_used_bytes",
    "swap_total_bytes",
    "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
)
S = timedelta(seconds=1)
M = timedelta(minutes=1)


def sample(pc_id: str, at: timedelta, **metrics) -> dict:
    """A sample ``at`` from NOW, every column present (as the projector decodes it)."""
    return {c: None for c in COLUMNS} | {"pc_id": pc_id, "at": ts(at)} | metrics


def store(engine, rows: list[dict]) -> None:
    """Write samples as projectord does: samples and the rollup in one transaction."""
    with engine.begin() as conn:
        projector.apply(conn, rows)


def z(stored: str) -> str:
    return stored.replace("+00:00", "Z")


def unix(stored: str) -> int:
    return int(parse_rfc3339(stored).timestamp() // 1)


def bucket_text(start: int) -> str:
    return z(format_db(datetime.fromtimestamp(start, UTC)))


def reference_points(rows, start: str, end: str, step: int, metrics, agg=None) -> list[dict]:
    """api.md's bucketing done by hand: floor(unix / step) * step, per-metric average
    (or max) of the non-NULL values, buckets without samples left out."""
    groups: dict[int, list[dict]] = {}
    for r in rows:
        if start <= r["at"] < end:
            groups.setdefault(unix(r["at"]) // step * step, []).append(r)
    out = []
    for key in sorted(groups):
        point = {"at": bucket_text(key)}
        for m in metrics:
            values = [r[m] for r in groups[key] if r[m] is not None]
            if not values:
                point[m] = None
            elif agg == "max":
                point[m] = max(values)
            else:
                point[m] = sum(values) / len(values)
        out.append(point)
    return out


# --------------------------------------------------------------------------- per PC


PC_ROWS = [
    sample("pc1", -60 * M, cpu_pct=10.0, mem_used_bytes=1000, mem_total_bytes=4000),  # = from
    sample("pc1", -60 * M - S, cpu_pct=99.0),  # before from
    sample("pc1", -58 * M, cpu_pct=20.0, mem_used_bytes=3000, disk_read_bytes_per_sec=1.5),
    sample("pc1", -56 * M + 59 * S, cpu_pct=None, swap_used_bytes=7),  # still the first bucket
    sample("pc1", -55 * M, cpu_pct=40.0, net_rx_bytes_per_sec=2.0),  # the next bucket
    sample("pc1", -31 * M, cpu_pct=1.0, net_tx_bytes_per_sec=3.0),
    sample("pc1", -S, cpu_pct=2.5, swap_total_bytes=8),  # last instant before to
    sample("pc1", 0 * S, cpu_pct=77.0),  # = to, excluded
    sample("pc2", -58 * M, cpu_pct=50.0),  # another PC
]


async def test_pc_perf_averages_each_metric_per_bucket(api_db, api):
    store(api_db, PC_ROWS)
    r = await api.get("/api/agents/pc1/perf")
    assert r.status_code == 200
    body = r.json()
    assert (body["pc_id"], body["step_seconds"]) == ("pc1", 300)
    assert (body["from"], body["to"]) == (z(ts(-60 * M)), z(ts()))
    pc1 = [row for row in PC_ROWS if row["pc_id"] == "pc1"]
    expected = reference_points(pc1, ts(-60 * M), ts(), 300, POINT_METRICS)
    assert body["points"] == expected
    # Spelled out for the first bucket: 10, 20 and a NULL give 15.
    first = body["points"][0]
    assert first["at"] == z(ts(-60 * M))
    assert (first["cpu_pct"], first["mem_used_bytes"], first["swap_used_bytes"]) == (15.0, 2000, 7)
    assert first["net_rx_bytes_per_sec"] is None
    assert [p["at"] for p in body["points"]] == [
        z(ts(-60 * M)),
        z(ts(-55 * M)),
        z(ts(-35 * M)),
        z(ts(-5 * M)),
    ], "ascending, empty buckets omitted"


async def test_pc_perf_window_and_step_from_the_query(api_db, api):
    store(api_db, PC_ROWS)
    params = {
        "from": "2026-11-22T19:58:30+09:00",  # = NOW - 61.5 min, in another offset
        "to": z(ts(-30 * M)),
        "step": "2m 30s",
    }
    body = (await api.get("/api/agents/pc1/perf", params=params)).json()
    assert (body["from"], body["to"], body["step_seconds"]) == (
        z(ts(-61 * M - 30 * S)),
        z(ts(-30 * M)),
        150,
    )
    pc1 = [row for row in PC_ROWS if row["pc_id"] == "pc1"]
    expected = reference_points(pc1, ts(-61 * M - 30 * S), ts(-30 * M), 150, POINT_METRICS)
    assert body["points"] == expected
    assert expected[0]["cpu_pct"] == 99.0, "the sample before the default window is in"
    assert [p["cpu_pct"] for p in expected] == [99.0, 15.0, None, 40.0, 1.0]


async def test_unknown_pc_has_no_points(api_db, api):
    store(api_db, PC_ROWS)
    body = (await api.get("/api/agents/nobody/perf")).json()
    assert body["pc_id"] == "nobody" and body["points"] == []


# --------------------------------------------------------------------------- 400 rules


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"step": "soon"}, "step"),
        ({"step": "5"}, "step"),  # a number needs a unit
        ({"step": "0s"}, "step"),
        ({"step": "-5m"}, "step"),
        ({"step": "500ms"}, "step"),  # below the one-second grain
        ({"from": z(ts()), "to": z(ts())}, "from"),
        ({"from": z(ts(M)), "to": z(ts())}, "from"),
        ({"from": z(ts(2 * M))}, "from"),  # after the default to (now)
        ({"from": z(ts(-10_001 * S)), "step": "1s"}, "step"),  # 10,001 buckets
        ({"from": "2026-13-01T00:00:00Z"}, "from"),
        ({"from": "0000-06-01T00:00:00Z"}, "from"),  # year 0 is not a date here
        ({"to": "10000-01-01T00:00:00Z"}, "to"),
        ({"to": "9999-12-31T23:00:00-05:00"}, "to"),  # past year 9999 in UTC
        ({"to": "0001-01-01T00:30:00Z"}, "from"),  # the default from would be year 0
        (
            {"from": "0001-01-01T00:00:00Z", "to": "0001-01-02T00:00:00Z", "step": "1000y"},
            "step",  # the first bucket would start before year 1
        ),
        ({"from": "yesterday"}, "from"),
    ],
)
@pytest.mark.parametrize(
    "path",
    ["/api/agents/pc1/perf", "/api/perf/fleet", "/api/agents/pc1/processes/timeline"],
)
async def test_bad_chart_windows_are_400_naming_the_parameter(api, path, query, parameter):
    r = await api.get(path, params=query)
    assert r.status_code == 400, r.text
    assert r.json()["parameter"] == parameter


async def test_exactly_ten_thousand_buckets_is_allowed(api_db, api):
    store(api_db, [sample("pc1", -10 * S, cpu_pct=3.0)])
    r = await api.get("/api/agents/pc1/perf", params={"from": z(ts(-10_000 * S)), "step": "1s"})
    assert r.status_code == 200
    point = {"at": z(ts(-10 * S))} | {m: None for m in POINT_METRICS} | {"cpu_pct": 3.0}
    assert r.json()["points"] == [point]


# --------------------------------------------------------------------------- fleet


def fleet_rows() -> list[dict]:
    """Three PCs over 80 minutes; values exact in binary so every sum is exact."""
    rows = []
    for pc in range(3):
        for k in range(0, 80 * 60, 17 + pc * 6):
            rows.append(
                sample(
                    f"pc{pc}",
                    -80 * M + k * S + pc * timedelta(microseconds=250_000),
                    cpu_pct=None if k % 7 == 0 else (k % 101) * 0.5,
                    mem_used_bytes=(k % 13 + pc) * 2**20,
                    disk_read_bytes_per_sec=None if pc == 1 else float(k % 9),
                    disk_written_bytes_per_sec=None,
                    net_rx_bytes_per_sec=(k % 5) * 0.25,
                    net_tx_bytes_per_sec=-(k % 3) * 0.125,
                )
            )
    return rows


FLEET_METRICS = (
    "cpu_pct",
    "mem_used_bytes",
    "disk_read_bytes_per_sec",
    "disk_written_bytes_per_sec",
    "net_rx_bytes_per_sec",
    "net_tx_bytes_per_sec",
)


def fleet_reference(rows, start, end, step, metric, agg) -> list[dict]:
    points = reference_points(rows, start, end, step, (metric,), agg)
    return [{"at": p["at"], "value": p[metric]} for p in points]


WINDOWS = [
    # (from, to, step): minute-aligned, misaligned at both ends, a window inside
    # one minute, a window of under two minutes, steps the rollup cannot serve.
    (ts(-60 * M), ts(), "5m"),
    (ts(-70 * M - 13 * S - timedelta(microseconds=1)), ts(-2 * M - 41 * S), "15m"),
    (ts(-61 * M + 30 * S), ts(-59 * M + 10 * S), "1m"),
    (ts(-20 * M + 5 * S), ts(-20 * M + 50 * S), "1m"),
    (ts(-90 * M), ts(10 * M), "2h"),
    (ts(-45 * M - 7 * S), ts(-3 * M - 2 * S), "90s"),
    (ts(-45 * M), ts(-3 * M), "7s"),
]


@pytest.mark.parametrize(("start", "end", "step"), WINDOWS)
@pytest.mark.parametrize("agg", ["avg", "max"])
async def test_fleet_points_equal_the_raw_reference(api_db, db_path, api, start, end, step, agg):
    rows = fleet_rows()
    store(api_db, rows)
    store(api_db, [dict(r, cpu_pct=1000.0) for r in rows[::5]])  # ignored duplicates
    db = ReadDatabase(db_path)
    try:
        for metric in FLEET_METRICS:
            params = {"metric": metric, "agg": agg, "from": z(start), "to": z(end), "step": step}
            r = await api.get("/api/perf/fleet", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            buckets = chart_window(
                parse_rfc3339(start),
                parse_rfc3339(end),
                timedelta(seconds=body["step_seconds"]),
                NOW,
            )
            raw = db.query(fleet_points_raw, metric, agg, buckets)
            assert body["points"] == raw, (metric, rollup_applies(buckets))
            expected = fleet_reference(rows, start, end, body["step_seconds"], metric, agg)
            assert raw == expected
            assert body["metric"] == metric and body["agg"] == agg
            assert (body["from"], body["to"]) == (z(start), z(end))
    finally:
        db.close()


async def test_fleet_reads_the_rollup_for_whole_minutes(api_db, db_path, api):
    rows = fleet_rows()
    store(api_db, rows)
    params = {"from": z(ts(-60 * M + 20 * S)), "to": z(ts(-10 * M + 5 * S)), "step": "10m"}
    before = (await api.get("/api/perf/fleet", params=params)).json()["points"]
    # Deleting raw samples inside whole minutes leaves the answer alone (the
    # rollup serves them); deleting them in the partial first minute does not.
    with api_db.begin() as conn:
        whole = (host_perf_samples.c.at >= ts(-50 * M)) & (host_perf_samples.c.at < ts(-40 * M))
        conn.execute(delete(host_perf_samples).where(whole))
    assert (await api.get("/api/perf/fleet", params=params)).json()["points"] == before
    with api_db.begin() as conn:
        edge = (host_perf_samples.c.at >= ts(-60 * M + 20 * S)) & (
            host_perf_samples.c.at < ts(-59 * M)
        )
        assert conn.execute(delete(host_perf_samples).where(edge)).rowcount > 0
    after = (await api.get("/api/perf/fleet", params=params)).json()["points"]
    assert after[0] != before[0] and after[1:] == before[1:]


async def test_fleet_defaults_and_metric_and_agg_aliases(api_db, api):
    rows = fleet_rows()
    store(api_db, rows)
    default = (await api.get("/api/perf/fleet")).json()
    assert (default["metric"], default["agg"], default["step_seconds"]) == ("cpu_pct", "avg", 300)
    assert (default["from"], default["to"]) == (z(ts(-60 * M)), z(ts()))
    assert default["points"] == fleet_reference(rows, ts(-60 * M), ts(), 300, "cpu_pct", "avg")
    aliases = {
        "cpu": "cpu_pct",
        "mem": "mem_used_bytes",
        "memory": "mem_used_bytes",
        "disk_read": "disk_read_bytes_per_sec",
        "disk_written": "disk_written_bytes_per_sec",
        "net_rx": "net_rx_bytes_per_sec",
        "net_tx": "net_tx_bytes_per_sec",
    }
    for alias, column in aliases.items():
        canonical = (await api.get("/api/perf/fleet", params={"metric": column})).json()
        spelled = (await api.get("/api/perf/fleet", params={"metric": alias})).json()
        assert spelled == canonical and spelled["metric"] == column
    mean = (await api.get("/api/perf/fleet", params={"agg": "mean"})).json()
    assert mean == default
    peak = (await api.get("/api/perf/fleet", params={"agg": "max"})).json()
    assert peak["agg"] == "max"
    assert peak["points"] == fleet_reference(rows, ts(-60 * M), ts(), 300, "cpu_pct", "max")
    for name, value in (("metric", "cpu_count"), ("metric", "CPU"), ("agg", "min")):
        r = await api.get("/api/perf/fleet", params={name: value})
        assert r.status_code == 400 and r.json()["parameter"] == name


async def test_fleet_without_samples_has_no_points(api):
    body = (await api.get("/api/perf/fleet", params={"step": "15m"})).json()
    assert body["points"] == [] and body["step_seconds"] == 900


# --------------------------------------------------------------------------- top


async def test_top_averages_per_pc_over_the_window_highest_first(api_db, api):
    seed(api_db, agents, [{"pc_id": "a", "hostname": "host-a", "updated_at": ts()}])
    seed(api_db, agents, [{"pc_id": "b", "hostname": None, "updated_at": ts()}])
    store(
        api_db,
        [
            sample("a", -4 * M, cpu_pct=10.0, mem_used_bytes=500),
            sample("a", -1 * M, cpu_pct=30.0, mem_used_bytes=700),
            sample("a", -5 * M, cpu_pct=1000.0),  # exactly now - 5m: outside
            sample("b", -2 * M, cpu_pct=25.0, mem_used_bytes=900),
            sample("b", -1 * M, cpu_pct=None),  # NULLs do not count
            sample("c", -3 * M, cpu_pct=20.0),  # no agents row: hostname null
            sample("d", -3 * M, cpu_pct=None, mem_used_bytes=100),  # no cpu value at all
            sample("e", -6 * M, cpu_pct=90.0),  # too old
        ],
    )
    body = (await api.get("/api/perf/top")).json()
    assert body == {
        "metric": "cpu_pct",
        "window_seconds": 300,
        "rows": [
            {"pc_id": "b", "hostname": None, "value": 25.0},
            {"pc_id": "a", "hostname": "host-a", "value": 20.0},  # (10 + 30) / 2
            {"pc_id": "c", "hostname": None, "value": 20.0},  # a tie: the smaller pc_id first
        ],
    }
    mem = (await api.get("/api/perf/top", params={"metric": "memory", "window": "10m"})).json()
    assert mem["metric"] == "mem_used_bytes" and mem["window_seconds"] == 600
    assert [(r["pc_id"], r["value"]) for r in mem["rows"]] == [("b", 900), ("a", 600), ("d", 100)]
    wide = (await api.get("/api/perf/top", params={"window": "6m 1s"})).json()
    assert wide["rows"][0] == {"pc_id": "a", "hostname": "host-a", "value": 1040 / 3}
    assert wide["rows"][1]["pc_id"] == "e"


async def test_top_limit_is_clamped_and_bad_values_are_400(api_db, api):
    store(api_db, [sample(f"pc{n:02d}", -M, cpu_pct=float(n)) for n in range(60)])
    for limit, count in (("0", 1), ("-3", 1), ("7", 7), ("50", 50), ("51", 50), ("9999", 50)):
        rows = (await api.get("/api/perf/top", params={"limit": limit})).json()["rows"]
        assert len(rows) == count, limit
        assert rows[0] == {"pc_id": "pc59", "hostname": None, "value": 59.0}
    default = (await api.get("/api/perf/top")).json()["rows"]
    assert [r["pc_id"] for r in default] == ["pc59", "pc58", "pc57", "pc56", "pc55"]
    for name, value in (
        ("limit", "many"),
        ("window", "0s"),
        ("window", "10"),
        ("window", "200ms"),
        ("metric", "cpu_count"),
    ):
        r = await api.get("/api/perf/top", params={name: value})
        assert r.status_code == 400 and r.json()["parameter"] == name, (name, value)
    huge = (await api.get("/api/perf/top", params={"window": "5000y"})).json()
    assert len(huge["rows"]) == 5 and huge["window_seconds"] == 5000 * 31_557_600


async def test_top_without_samples_is_empty(api):
    assert (await api.get("/api/perf/top")).json()["rows"] == []


# --------------------------------------------------------------------------- investigations


async def test_active_investigations_newest_first(api_db, db_path, api):
    seed(api_db, agents, [{"pc_id": "inv-1", "hostname": "h1", "updated_at": ts()}])
    proc = {"pid": 1, "name": "p", "cpu_pct": 1.0, "rss_bytes": 1}
    seed(
        api_db,
        process_perf_samples,
        [
            {**proc, "pc_id": "inv-1", "at": ts(-4 * M)},
            {**proc, "pc_id": "inv-1", "at": ts(-1 * M)},
            {**proc, "pid": 2, "pc_id": "inv-1", "at": ts(-1 * M)},
            {**proc, "pc_id": "inv-2", "at": ts(-30 * S)},
            {**proc, "pc_id": "inv-3", "at": ts(-5 * M)},  # exactly 5 minutes ago: in
            {**proc, "pc_id": "old", "at": ts(-5 * M - S)},
        ],
    )
    body = (await api.get("/api/perf/active-investigations")).json()
    assert body == {
        "window_seconds": 300,
        "rows": [
            {"pc_id": "inv-2", "hostname": None, "latest_at": z(ts(-30 * S))},
            {"pc_id": "inv-1", "hostname": "h1", "latest_at": z(ts(-1 * M))},
            {"pc_id": "inv-3", "hostname": None, "latest_at": z(ts(-5 * M))},
        ],
    }
    async with client(db_path, now=NOW + timedelta(hours=1)) as later:
        assert (await later.get("/api/perf/active-investigations")).json()["rows"] == []
