"""``/api/agents/{pc_id}/processes`` and ``.../processes/timeline`` (api.md 3.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from api_harness import seed, ts

from projectord.schema import process_perf_samples
from projectord.timestamps import format_db, parse_rfc3339

S = timedelta(seconds=1)
M = timedelta(minutes=1)


def proc(pc_id: str, at: timedelta, pid: int, name: str, cpu: float, rss: int, **disk) -> dict:
    return {
        "pc_id": pc_id,
        "at": ts(at),
        "pid": pid,
        "name": name,
        "cpu_pct": cpu,
        "rss_bytes": rss,
        "disk_read_bytes_per_sec": disk.get("read"),
        "disk_written_bytes_per_sec": disk.get("written"),
    }


def z(stored: str) -> str:
    return stored.replace("+00:00", "Z")


# --------------------------------------------------------------------------- snapshot


async def test_processes_are_the_newest_instant_highest_cpu_first(api_db, api):
    seed(
        api_db,
        process_perf_samples,
        [
            proc("pc1", -2 * M, 10, "old.exe", 99.0, 1),
            proc("pc1", -M, 4, "System", 0.5, 100, read=None, written=2.0),
            proc("pc1", -M, 300, "chrome.exe", 12.5, 9000, read=1.5, written=None),
            proc("pc1", -M, 200, "svchost.exe", 12.5, 3000, read=0.0, written=0.0),
            proc("pc1", -M, 100, "idle", 0.0, 0),
            proc("pc2", -10 * S, 1, "other-pc.exe", 50.0, 1),
        ],
    )
    body = (await api.get("/api/agents/pc1/processes")).json()
    assert body["pc_id"] == "pc1"
    assert body["latest_at"] == z(ts(-M))
    assert body["processes"] == [
        {
            "pid": 200,  # a cpu_pct tie: the smaller pid first
            "name": "svchost.exe",
            "cpu_pct": 12.5,
            "rss_bytes": 3000,
            "disk_read_bytes_per_sec": 0.0,
            "disk_written_bytes_per_sec": 0.0,
        },
        {
            "pid": 300,
            "name": "chrome.exe",
            "cpu_pct": 12.5,
            "rss_bytes": 9000,
            "disk_read_bytes_per_sec": 1.5,
            "disk_written_bytes_per_sec": None,
        },
        {
            "pid": 4,
            "name": "System",
            "cpu_pct": 0.5,
            "rss_bytes": 100,
            "disk_read_bytes_per_sec": None,
            "disk_written_bytes_per_sec": 2.0,
        },
        {
            "pid": 100,
            "name": "idle",
            "cpu_pct": 0.0,
            "rss_bytes": 0,
            "disk_read_bytes_per_sec": None,
            "disk_written_bytes_per_sec": None,
        },
    ]


async def test_processes_without_samples_is_empty_not_404(api_db, api):
    seed(api_db, process_perf_samples, [proc("pc1", -M, 1, "a", 1.0, 1)])
    r = await api.get("/api/agents/nobody/processes")
    assert r.status_code == 200
    assert r.json() == {"pc_id": "nobody", "latest_at": None, "processes": []}


# --------------------------------------------------------------------------- timeline


def timeline_rows() -> list[dict]:
    """pc1 over the last hour: five names with distinct averages, several pids of
    one name, NULL disk reads, and samples outside the window and of another PC."""
    rows = []
    cpu = {"a.exe": 40.0, "b.exe": 30.0, "c.exe": 20.0, "d.exe": 10.0, "e.exe": 5.0}
    for k in range(12):
        at = -60 * M + k * 5 * M + (k % 3) * 20 * S
        for n, (name, base) in enumerate(cpu.items()):
            if name == "c.exe" and k % 4 == 1:
                continue  # not observed in some buckets
            rows.append(
                proc(
                    "pc1",
                    at,
                    100 + n,
                    name,
                    base + k,
                    (n + 1) * 1000 + k,
                    read=None if name in ("a.exe", "e.exe") else float(k + n),
                )
            )
        rows.append(proc("pc1", at, 900 + k, "b.exe", 2.0, 1))  # a second b.exe process
    rows.append(proc("pc1", -61 * M, 1, "z.exe", 500.0, 10**9, read=900.0))  # before from
    rows.append(proc("pc1", 0 * M, 1, "z.exe", 500.0, 10**9, read=900.0))  # = to
    rows.append(proc("pc2", -30 * M, 1, "z.exe", 500.0, 10**9, read=900.0))  # another PC
    return rows


COLUMN = {
    "cpu_pct": "cpu_pct",
    "rss_bytes": "rss_bytes",
    "disk_read_bytes_per_sec": "disk_read_bytes_per_sec",
}


def reference(rows, metric: str, start: str, end: str, step: int, top: int):
    """api.md 3.5 by hand: top names by window average, every other name as 'other'."""
    kept = [
        r for r in rows if r["pc_id"] == "pc1" and start <= r["at"] < end and r[metric] is not None
    ]
    by_name: dict[str, list[float]] = {}
    for r in kept:
        by_name.setdefault(r["name"], []).append(r[metric])
    ranked = sorted(by_name, key=lambda n: (-sum(by_name[n]) / len(by_name[n]), n))
    tops = ranked[:top]
    series: dict[int, dict[str, list[float]]] = {}
    for r in kept:
        key = int(parse_rfc3339(r["at"]).timestamp()) // step * step
        name = r["name"] if r["name"] in tops else "other"
        series.setdefault(key, {}).setdefault(name, []).append(r[metric])
    names = tops + (["other"] if any("other" in v for v in series.values()) else [])
    points = [
        {
            "at": z(format_db(datetime.fromtimestamp(key, UTC))),
            "values": {n: sum(v) / len(v) for n in names if (v := series[key].get(n))},
        }
        for key in sorted(series)
    ]
    return names, points


async def test_timeline_top_names_and_other_per_bucket(api_db, api):
    rows = timeline_rows()
    seed(api_db, process_perf_samples, rows)
    body = (await api.get("/api/agents/pc1/processes/timeline", params={"top": "2"})).json()
    assert (body["pc_id"], body["metric"], body["step_seconds"]) == ("pc1", "cpu_pct", 60)
    assert (body["from"], body["to"]) == (z(ts(-60 * M)), z(ts()))
    names, points = reference(rows, "cpu_pct", ts(-60 * M), ts(), 60, 2)
    # b.exe's second process (cpu 2) pulls its average below c.exe's.
    assert names == body["names"] == ["a.exe", "c.exe", "other"]
    assert body["points"] == points
    assert len(points) == 12
    first = body["points"][0]
    assert first["at"] == z(ts(-60 * M))
    assert first["values"] == {"a.exe": 40.0, "c.exe": 20.0, "other": (30 + 10 + 5 + 2) / 4}
    assert list(first["values"]) == ["a.exe", "c.exe", "other"]
    missing = body["points"][1]
    assert "c.exe" not in missing["values"], "not observed in that bucket"


@pytest.mark.parametrize(
    ("query", "metric", "step", "top"),
    [
        ({"metric": "rss", "top": "3"}, "rss_bytes", 60, 3),
        ({"metric": "memory", "step": "10m"}, "rss_bytes", 600, 5),
        ({"metric": "mem", "step": "7m"}, "rss_bytes", 420, 5),
        ({"metric": "disk_read", "top": "1"}, "disk_read_bytes_per_sec", 60, 1),
        ({"metric": "disk_read", "top": "0"}, "disk_read_bytes_per_sec", 60, 1),  # clamped
        ({"metric": "cpu", "top": "-4"}, "cpu_pct", 60, 1),
        ({"metric": "cpu_pct", "top": "5"}, "cpu_pct", 60, 5),
        ({"metric": "disk_written", "top": "99"}, "disk_written_bytes_per_sec", 60, 20),
    ],
)
async def test_timeline_metrics_steps_and_top_clamping(api_db, api, query, metric, step, top):
    rows = timeline_rows()
    seed(api_db, process_perf_samples, rows)
    body = (await api.get("/api/agents/pc1/processes/timeline", params=query)).json()
    assert (body["metric"], body["step_seconds"]) == (metric, step)
    names, points = reference(rows, metric, ts(-60 * M), ts(), step, top)
    assert (body["names"], body["points"]) == (names, points)


async def test_timeline_other_only_when_it_has_data(api_db, api):
    rows = timeline_rows()
    seed(api_db, process_perf_samples, rows)
    body = (
        await api.get(
            "/api/agents/pc1/processes/timeline", params={"metric": "disk_read", "top": "3"}
        )
    ).json()
    # Only b, c and d have disk reads: with top 3 nothing is left for "other".
    assert body["names"] == ["d.exe", "c.exe", "b.exe"]
    assert all(set(p["values"]) <= {"b.exe", "c.exe", "d.exe"} for p in body["points"])


async def test_timeline_top_above_twenty_is_twenty(api_db, api):
    rows = [proc("pc1", -M, pid, f"p{pid:02d}", float(pid), pid) for pid in range(25)]
    seed(api_db, process_perf_samples, rows)
    body = (await api.get("/api/agents/pc1/processes/timeline", params={"top": "50"})).json()
    assert body["names"] == [f"p{pid:02d}" for pid in range(24, 4, -1)] + ["other"]
    assert body["points"][0]["values"]["other"] == sum(range(5)) / 5


async def test_timeline_without_samples_is_empty(api_db, api):
    seed(api_db, process_perf_samples, [proc("pc1", -2 * 60 * M, 1, "a", 1.0, 1)])
    for pc in ("pc1", "nobody"):
        body = (await api.get(f"/api/agents/{pc}/processes/timeline")).json()
        assert (body["names"], body["points"]) == ([], []), pc


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"metric": "cpu_count"}, "metric"),
        ({"metric": "net_rx"}, "metric"),
        ({"top": "few"}, "top"),
        ({"step": "never"}, "step"),
        ({"from": z(ts(-M)), "to": z(ts(-2 * M))}, "from"),
        ({"from": z(ts(-3 * 3600 * S)), "step": "1s"}, "step"),
    ],
)
async def test_timeline_bad_parameters_are_400(api, query, parameter):
    r = await api.get("/api/agents/pc1/processes/timeline", params=query)
    assert r.status_code == 400 and r.json()["parameter"] == parameter
