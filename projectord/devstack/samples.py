"""Sample jobs and schedules that keep a simulated fleet busy in the dev stack, and the
broker resources the rest of kanade would have made.

Chosen so the dashboard has something on every page within a minute: the hourly
inventory fires at the next minute boundary to every online PC (per_pc shapes are
re-evaluated every minute), other shapes and targets fill the schedule pages, and
one disabled schedule shows the paused state.
"""

from __future__ import annotations

import json
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyWrongLastSequenceError, NotFoundError

# Made by other kanade components in a real deployment (agents and the release
# tooling); fleet health reads "degraded" while they are missing.
COMPANION_BUCKETS = ("agents_state", "agent_config")
COMPANION_OBJECT_STORES = ("agent_releases",)

SAMPLE_JOBS: tuple[dict[str, Any], ...] = (
    {
        "id": "inventory-hw",
        "version": "1.2.0",
        "description": "Hardware inventory",
        "execute": {
            "shell": "powershell",
            "script": "Get-CimInstance Win32_ComputerSystem | Select-Object Manufacturer, Model",
            "timeout": "5m",
        },
        "inventory": {},
    },
    {
        "id": "patch-scan",
        "version": "2.0.1",
        "description": "List the newest installed updates",
        "execute": {
            "shell": "powershell",
            "script": "Get-HotFix | Sort-Object InstalledOn -Descending | Select-Object -First 20",
            "timeout": "10m",
        },
    },
    {
        "id": "agent-health",
        "version": "1.0.0",
        "description": "Check the agent service",
        "execute": {"shell": "powershell", "script": "Get-Service kanade-agent", "timeout": "1m"},
    },
    {
        "id": "disk-cleanup",
        "version": "1.0.3",
        "description": "Run the disk clean-up profile",
        "execute": {"shell": "cmd", "script": "cleanmgr /sagerun:1", "timeout": "15m"},
    },
    {
        "id": "collect-logs",
        "version": "0.9.0",
        "description": "Tail the last hour of the system journal",
        "execute": {
            "shell": "sh",
            "script": "journalctl --since -1h --no-pager | tail -n 200",
            "timeout": "2m",
        },
    },
)

SAMPLE_SCHEDULES: tuple[dict[str, Any], ...] = (
    {
        "id": "inventory-hourly",
        "when": {"per_pc": {"every": "1h"}},
        "job_id": "inventory-hw",
        "target": {"all": True},
        "jitter": "20s",
    },
    {
        "id": "patch-scan-office",
        "when": {"per_pc": {"every": "6h"}},
        "job_id": "patch-scan",
        "target": {"groups": ["office"]},
        "jitter": "30s",
    },
    {
        "id": "health-lab",
        "when": {"per_target": {"every": "15m"}},
        "job_id": "agent-health",
        "target": {"groups": ["lab"]},
    },
    {
        "id": "nightly-cleanup",
        "when": {"calendar": {"at": "03:15", "days": ["mon-fri"]}},
        "job_id": "disk-cleanup",
        "target": {"groups": ["office", "lab"]},
        "tz": "utc",
    },
    {
        "id": "weekly-logs",
        "when": {"calendar": {"at": "04:00", "days": ["sat"]}},
        "job_id": "collect-logs",
        "target": {"groups": ["servers"]},
        "tz": "utc",
    },
    {
        "id": "kiosk-reimage",
        "when": {"calendar": {"at": "02:00"}},
        "job_id": "disk-cleanup",
        "target": {"groups": ["kiosk"]},
        "tz": "utc",
        "enabled": False,
    },
)


async def _create(js: JetStreamContext, bucket: str, entries: tuple[dict[str, Any], ...]) -> int:
    kv = await js.key_value(bucket)
    added = 0
    for entry in entries:
        try:
            await kv.create(entry["id"], json.dumps(entry).encode())
            added += 1
        except KeyWrongLastSequenceError:
            pass  # already there, perhaps edited since: keep it
    return added


async def _ensure_companions(js: JetStreamContext) -> None:
    for bucket in COMPANION_BUCKETS:
        try:
            await js.key_value(bucket)
        except BucketNotFoundError:
            await js.create_key_value(bucket=bucket)
    for store in COMPANION_OBJECT_STORES:
        try:
            await js.object_store(store)
        except NotFoundError:
            await js.create_object_store(store)


async def publish_samples(js: JetStreamContext) -> tuple[int, int]:
    """Add the sample jobs and schedules that are missing, and the broker resources
    of the rest of kanade; (jobs, schedules) added."""
    await _ensure_companions(js)
    jobs = await _create(js, "jobs", SAMPLE_JOBS)
    schedules = await _create(js, "schedules", SAMPLE_SCHEDULES)
    return jobs, schedules
