"""More jobs and schedules for the Schedules and Jobs page tests.

The shared stack holds one job and two schedules; these add the other shapes the
pages must show: a paused schedule with every optional field, an agent-run one, one
whose active dates are over (so it never fires again and cannot change the upcoming
list other tests read), an invalid one, and a second and third job (one with a
script object). Published to KV through the broker; projectord mirrors them.
"""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any

import nats

DISK_SCRIPT = "\n".join(
    [
        "$ErrorActionPreference = 'Stop'",
        "$before = (Get-PSDrive C).Free",
        "Start-Process cleanmgr.exe -ArgumentList '/sagerun:1' -Wait",
        "Remove-Item $env:TEMP\\* -Recurse -Force -ErrorAction SilentlyContinue",
        "$after = (Get-PSDrive C).Free",
        "'freed {0:N1} GiB' -f (($after - $before) / 1GB)",
    ]
)
JOBS: list[dict[str, Any]] = [
    {
        "id": "disk-cleanup",
        "version": "1.0.3",
        "description": "Run the disk clean-up profile and empty TEMP",
        "execute": {"shell": "powershell", "script": DISK_SCRIPT, "timeout": "15m"},
    },
    {
        "id": "agent-health",
        "version": "2.1.0",
        "execute": {
            "shell": "cmd",
            "script_object": "agent-health-2.1.0.cmd",
            "timeout": "1m",
            "run_as": "system",
        },
    },
]
PAUSED = {
    "id": "weekly-disk-cleanup",
    "when": {"calendar": {"at": "22:00", "days": ["sun"]}},
    "job_id": "disk-cleanup",
    "target": {"groups": ["office", "lab"]},
    "tz": "utc",
    "jitter": "5m",
    "starting_deadline": "30m",
    "constraints": {"window": "21:00-23:30", "max_concurrent": 10, "skip_dates": ["2026-12-25"]},
    "on_failure": {"retry": {"max": 2, "backoff": "10m"}},
    "tags": ["maintenance", "disk"],
    "enabled": False,
}
AGENT_RUN = {
    "id": "logon-health",
    "when": {"on": ["logon"]},
    "job_id": "agent-health",
    "target": {"all": True},
    "runs_on": "agent",
}
INVALID = {
    "id": "broken-schedule",
    "when": {"calendar": {"at": "25:99"}},
    "job_id": "disk-cleanup",
    "target": {"all": True},
}
ENDED_ID = "legacy-report"
# The ended schedule's fires were due at this time of day (UTC).
ENDED_AT = "06:00"


def ended_schedule(today: date) -> dict[str, Any]:
    """A daily calendar schedule whose active dates ended yesterday."""
    return {
        "id": ENDED_ID,
        "when": {"calendar": {"at": ENDED_AT}},
        "job_id": "agent-health",
        "target": {"pcs": [f"sim-{i:05d}" for i in range(1, 6)]},
        "tz": "utc",
        "active": {"until": (today - timedelta(days=1)).isoformat()},
    }


def catalog(today: date) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(jobs, schedules) to publish."""
    return JOBS, [PAUSED, AGENT_RUN, INVALID, ended_schedule(today)]


def run(coro: Any) -> Any:
    """Run a coroutine on its own thread (Playwright's sync API owns this one's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _put(url: str, jobs: list[dict[str, Any]], schedules: list[dict[str, Any]]) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for bucket, entries in (("jobs", jobs), ("schedules", schedules)):
            kv = await js.key_value(bucket)
            for entry in entries:
                await kv.put(entry["id"], json.dumps(entry).encode())
    finally:
        await nc.close()


def publish_catalog(live: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Put the catalog into KV and wait until projectord has mirrored every entry."""
    jobs, schedules = catalog(datetime.now(UTC).date())
    run(_put(live.nats_url, jobs, schedules))
    wanted = {("jobs", j["id"]) for j in jobs} | {("schedules", s["id"]) for s in schedules}
    deadline = time.monotonic() + 60
    while True:
        rows = live.query(
            "SELECT bucket, key FROM kv_entries WHERE bucket IN ('jobs', 'schedules')"
        )
        if wanted <= set(rows):
            return jobs, schedules
        assert time.monotonic() < deadline, f"not mirrored: {wanted - set(rows)}"
        time.sleep(0.2)
