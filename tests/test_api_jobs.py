"""/api/jobs (manifests with live execution counts) and /api/freeze."""

from __future__ import annotations

import json
from datetime import timedelta

from api_harness import seed, ts

from apiserver.routes.jobs import shape_freeze
from projectord.schema import executions, kv_entries

H = timedelta(hours=1)


def manifest(job_id: str, **fields) -> dict:
    """A manifest as operators store it in KV ``jobs`` (wire-contract 6.9)."""
    return {
        "id": job_id,
        "version": "1.0.0",
        "execute": {"shell": "powershell", "script": "Get-CimInstance", "timeout": "10m"},
        **fields,
    }


def kv(engine, bucket: str, entries: dict) -> None:
    seed(
        engine,
        kv_entries,
        [
            {
                "bucket": bucket,
                "key": key,
                "value": value if isinstance(value, str) else json.dumps(value),
                "revision": i + 1,
                "written_at": ts(-H),
            }
            for i, (key, value) in enumerate(entries.items())
        ],
    )


def execution(exec_id: str, job_id: str, status: str) -> dict:
    return {
        "exec_id": exec_id,
        "job_id": job_id,
        "version": "1.0.0",
        "initiated_by": "scheduler",
        "initiated_at": ts(-H),
        "target_count": 3,
        "status": status,
    }


async def test_jobs_by_id_with_live_counts(api_db, api):
    assert (await api.get("/api/jobs")).json() == []
    inv_sw = manifest(
        "inv-sw",
        description="installed software",
        inventory={"table": "software"},
        tags=["inventory"],
        execute={"shell": "sh", "script_object": "inv-sw.sh", "timeout": "5m", "run_as": "user"},
    )
    inv_hw = manifest("inv-hw")
    cleanup = manifest("cleanup", tier="controller")
    kv(
        api_db,
        "jobs",
        {
            "inv-sw": inv_sw,
            "inv-hw": inv_hw,
            "cleanup": cleanup,
            "broken": "{not json",
            "no-version": {"id": "no-version", "execute": inv_hw["execute"]},
            "bad-shell": manifest("bad-shell", execute={"shell": "zsh", "script": "x"}),
        },
    )
    seed(
        api_db,
        executions,
        [
            execution("e1", "inv-hw", "running"),
            execution("e2", "inv-hw", "running"),
            execution("e3", "inv-hw", "pending"),
            execution("e4", "inv-hw", "completed"),
            execution("e5", "inv-sw", "pending"),
            execution("e6", "inv-sw", "expired"),
            execution("e7", "gone", "running"),  # a job no longer in KV
        ],
    )
    body = (await api.get("/api/jobs")).json()
    assert body == [
        {**cleanup, "live": {"running": 0, "pending": 0}},
        {**inv_hw, "live": {"running": 2, "pending": 1}},
        {**inv_sw, "live": {"running": 0, "pending": 1}},
    ]


async def test_freeze_absent_is_null(api_db, api):
    r = await api.get("/api/freeze")
    assert r.status_code == 200 and r.json() is None


async def test_freeze_is_the_stored_object(api_db, api):
    stored = {"from": "2026-12-20", "until": "2027-01-05T00:00:00Z", "reason": "holidays"}
    kv(api_db, "fleet_config", {"freeze": {**stored, "tz": "Europe/Berlin", "by": "ops"}})
    assert (await api.get("/api/freeze")).json() == {**stored, "tz": "Europe/Berlin"}


async def test_an_empty_freeze_is_indefinite(api_db, api):
    kv(api_db, "fleet_config", {"freeze": {}, "other": {"x": 1}})
    assert (await api.get("/api/freeze")).json() == {}


def test_a_freeze_that_does_not_decode_reads_as_frozen_indefinitely():
    assert shape_freeze("{oops") == {}
    assert shape_freeze("[1, 2]") == {}
    assert shape_freeze('{"from": 20261220, "reason": "x"}') == {}
    assert shape_freeze('{"reason": "patch day", "until": null}') == {"reason": "patch day"}
