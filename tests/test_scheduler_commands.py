"""Manifests from KV and the Command / audit bodies a fire publishes (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from projectord.scheduler.commands import Fire, audit_body, command_body, subjects_for
from projectord.scheduler.manifest import ManifestError, parse_manifest
from projectord.scheduler.schedule import Target, parse_schedule

JOB = {
    "id": "inv-hw",
    "version": "1.2.0",
    "description": "hardware inventory",
    "execute": {"shell": "powershell", "script": "Get-CimInstance Win32_BIOS", "timeout": "10m"},
    "inventory": {"category": "hw"},
    "collect": {"as": "json"},
}
SCHEDULE = {
    "id": "nightly",
    "when": {"calendar": {"at": "02:00"}},
    "job_id": "inv-hw",
    "target": {"all": True},
    "jitter": "5m",
    "on_failure": {"retry": {"max": 2, "backoff": "1m"}},
    "tz": "utc",
}
FIRE = Fire("exec-1", datetime(2026, 7, 1, 2, 30, tzinfo=UTC))


def manifest(**changes):
    return parse_manifest("inv-hw", json.dumps({**JOB, **changes}))


def test_manifest_fields():
    m = manifest()
    assert (m.id, m.version, m.shell, m.run_as) == ("inv-hw", "1.2.0", "powershell", "system")
    assert m.timeout == timedelta(minutes=10) and not m.controller
    assert m.extras == {"collect": {"as": "json"}}


def test_controller_tier_by_tier_or_feed():
    assert manifest(tier="controller").controller
    assert manifest(feed=[{"from": "x"}]).controller


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": "other"}, "id"),
        ({"version": ""}, "version"),
        ({"execute": None}, "execute"),
        ({"execute": {**JOB["execute"], "shell": "bash"}}, r"execute\.shell"),
        ({"execute": {**JOB["execute"], "timeout": "ten minutes"}}, r"execute\.timeout"),
        ({"execute": {**JOB["execute"], "run_as": "root"}}, r"execute\.run_as"),
        ({"execute": {**JOB["execute"], "script_object": "inv/1"}}, "exactly one"),
        ({"execute": {"shell": "sh", "script": "", "timeout": "1m"}}, "exactly one"),
        ({"tier": "server"}, "tier"),
    ],
)
def test_bad_manifests_name_the_field(changes, field):
    with pytest.raises(ManifestError, match=field):
        manifest(**changes)


def test_subjects_in_order():
    target = Target(all=True, groups=("a", "b"), pcs=("pc-1",))
    assert subjects_for(target) == [
        "commands.all",
        "commands.group.a",
        "commands.group.b",
        "commands.pc.pc-1",
    ]


def test_command_body():
    schedule = parse_schedule("nightly", json.dumps(SCHEDULE))
    body = json.loads(command_body(manifest(), schedule, FIRE, "req-1"))
    assert body == {
        "id": "inv-hw",
        "version": "1.2.0",
        "request_id": "req-1",
        "exec_id": "exec-1",
        "shell": "powershell",
        "script": "Get-CimInstance Win32_BIOS",
        "timeout_secs": 600,
        "jitter_secs": 300,
        "run_as": "system",
        "deadline_at": "2026-07-01T02:30:00.000000Z",
        "staleness": {"mode": "cached"},
        "collect": {"as": "json"},
        "retry": {"max": 2, "backoff_secs": 60},
    }


def test_command_with_a_script_object_and_no_options():
    schedule = parse_schedule(
        "s", json.dumps({**SCHEDULE, "id": "s", "jitter": None, "on_failure": None})
    )
    m = manifest(execute={"shell": "sh", "script_object": "inv/1.2.0", "timeout": "500ms"})
    body = json.loads(command_body(m, schedule, Fire("e", None, "ab" * 32), "r"))
    assert body["script"] == "" and body["script_object"] == "inv/1.2.0"
    assert body["script_object_sha256"] == "ab" * 32
    assert body["timeout_secs"] == 1  # floored at one second
    for absent in ("jitter_secs", "deadline_at", "retry", "cwd"):
        assert absent not in body


def test_audit_body():
    at = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
    body = json.loads(audit_body(manifest(), FIRE, 3, ["commands.all"], False, at))
    assert body == {
        "actor": "scheduler",
        "action": "exec",
        "target": "inv-hw",
        "payload": {
            "exec_id": "exec-1",
            "version": "1.2.0",
            "target_count": 3,
            "subjects": ["commands.all"],
            "wave_mode": False,
        },
        "occurred_at": "2026-07-01T02:00:00.000000Z",
    }


def test_audit_of_a_huge_per_pc_fire_is_cut():
    subjects = [f"commands.pc.pc-{i}" for i in range(30000)]
    at = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)
    body = audit_body(manifest(), FIRE, 30000, subjects, False, at)
    payload = json.loads(body)["payload"]
    assert len(payload["subjects"]) == 1000 and payload["subjects_truncated"] == 29000
    assert len(body) < 100_000
