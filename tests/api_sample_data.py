"""A small database with a row of every kind, for tests that sweep the whole API.

Varied on purpose: NULLs where columns allow them, non-ASCII text, outputs longer
than the list previews, a payload that is not JSON, a reject that is not UTF-8.
"""

from __future__ import annotations

import json
from datetime import timedelta

from api_harness import seed, ts
from sqlalchemy import Engine

from projectord.broker_status import PROBED_KV, PROBED_OBJECT_STORES, PROBED_STREAMS
from projectord.schema import (
    agents,
    audit_log,
    broker_consumers,
    broker_resources,
    broker_streams,
    execution_results,
    executions,
    host_perf_samples,
    kv_entries,
    kv_mirror_status,
    obs_events,
    process_perf_samples,
    projector_checkpoints,
    projector_gaps,
    projector_rejects,
    schedule_fires,
    scheduler_rejects,
)

M = timedelta(minutes=1)
PCS = ("pc-001", "pc-002", "pc-ünï")
JOB = {
    "id": "inv-hw",
    "version": "1.0.0",
    "execute": {"shell": "powershell", "script": "Get-CimInstance Win32_BIOS", "timeout": "10m"},
}
SCHEDULES = {
    "nightly": {
        "id": "nightly",
        "when": {"calendar": {"at": "09:00", "days": ["mon", "tue", "wed", "thu", "fri"]}},
        "job_id": "inv-hw",
        "target": {"all": True},
        "tz": "Europe/Berlin",
    },
    "catch-up": {
        "id": "catch-up",
        "when": {"per_pc": {"every": "6h"}},
        "job_id": "inv-hw",
        "target": {"groups": ["canary"]},
    },
}


def seed_everything(engine: Engine) -> None:
    """One database exercising every table the API reads."""
    seed(
        engine,
        agents,
        [
            {
                "pc_id": pc,
                "hostname": None if i == 2 else f"HOST-{i}",
                "last_heartbeat": ts(-i * 5 * M),
                "agent_version": "0.43.1" if i else "0.42.0",
                "os_family": "windows" if i != 1 else "linux",
                "updated_at": ts(-i * M),
                "agent_cpu_pct": 1.5 * i,
                "agent_rss_bytes": 50_000_000 + i,
                "quarantined_versions": json.dumps(["0.41.0"]) if i == 0 else None,
                "last_logon_user": "" if i == 1 else "CORP\\taro",
                "command_keys": json.dumps(["k1"]) if i == 0 else None,
                "enforcing": 1 if i == 0 else None,
            }
            for i, pc in enumerate(PCS)
        ],
    )
    seed(
        engine,
        executions,
        [
            {
                "exec_id": "exec-1",
                "job_id": "inv-hw",
                "version": "1.0.0",
                "initiated_by": "scheduler",
                "initiated_at": ts(-60 * M),
                "target_count": 3,
                "success_count": 1,
                "failure_count": 1,
                "status": "running",
                "schedule_id": "nightly",
            }
        ],
    )
    long_out = "résumé " * 100
    seed(
        engine,
        execution_results,
        [
            {
                "result_id": f"res-{i}",
                "request_id": f"req-{i}",
                "exec_id": "exec-1" if i < 3 else None,
                "pc_id": pc,
                "exit_code": (0, 1, None, 125)[i],
                "stdout": long_out if i == 0 else "ok",
                "stderr": "" if i != 1 else "boom",
                "started_at": ts(-(59 - i) * M),
                "finished_at": None if i == 2 else ts(-(50 - i) * M),
                "recorded_at": ts(-(50 - i) * M),
                "job_id": "inv-hw" if i < 3 else None,
                "version": "1.0.0",
                "skipped": 1 if i == 3 else 0,
                "parent_result_id": "res-0" if i == 3 else None,
            }
            for i, pc in enumerate((*PCS, PCS[0]))
        ],
    )
    seed(
        engine,
        audit_log,
        [
            {
                "actor": "scheduler",
                "action": "exec",
                "target": "inv-hw",
                "payload": json.dumps({"exec_id": "exec-1", "subjects": ["commands.all"]}),
                "occurred_at": ts(-60 * M),
                "stream_seq": 1,
            },
            {
                "actor": "operator",
                "action": "freeze",
                "target": None,
                "payload": "{not json",
                "occurred_at": ts(-30 * M),
                "stream_seq": 2,
            },
        ],
    )
    kinds = ("boot", "logon", "logoff", "sleep", "resume", "active")
    seed(
        engine,
        obs_events,
        [
            {
                "pc_id": PCS[i % 3],
                "at": ts(-(40 - i) * M),
                "kind": kind,
                "source": "windows_event_log" if i % 2 else "agent",
                "event_record_id": str(i) if i else None,
                "payload": json.dumps({"logon_type": 2, "user": "taro"}) if i else "not json",
            }
            for i, kind in enumerate(kinds)
        ],
    )
    seed(
        engine,
        host_perf_samples,
        [
            {
                "pc_id": pc,
                "at": ts(-k * M),
                "cpu_pct": 10.0 + k,
                "cpu_count": 8,
                "mem_used_bytes": 4_000_000_000 + k,
                "mem_total_bytes": 16_000_000_000,
                "swap_used_bytes": None,
                "swap_total_bytes": None,
                "disk_read_bytes_per_sec": 1000.0 * k,
                "disk_written_bytes_per_sec": None,
                "net_rx_bytes_per_sec": 5.0,
                "net_tx_bytes_per_sec": 6.0,
            }
            for pc in PCS
            for k in range(0, 30, 3)
        ],
    )
    seed(
        engine,
        process_perf_samples,
        [
            {
                "pc_id": PCS[0],
                "at": ts(-k * M),
                "pid": pid,
                "name": name,
                "cpu_pct": float(pid % 7 + k),
                "rss_bytes": pid * 1000,
                "disk_read_bytes_per_sec": None if pid == 4 else 1.0,
                "disk_written_bytes_per_sec": 2.0,
            }
            for k in (1, 2)
            for pid, name in ((4, "System"), (100, "svchost.exe"), (200, "chrome.exe"))
        ],
    )
    written = ts(-120 * M)
    kv = [("jobs", "inv-hw", json.dumps(JOB))]
    kv += [("schedules", key, json.dumps(value)) for key, value in SCHEDULES.items()]
    kv += [("schedules", "broken", '{"id": "broken", "when": 5}')]
    kv += [("fleet_config", "freeze", json.dumps({"reason": "change window", "by": "ops"}))]
    kv += [("agent_groups", PCS[0], json.dumps({"groups": ["canary"]}))]
    seed(
        engine,
        kv_entries,
        [
            {"bucket": b, "key": k, "value": v, "revision": i + 1, "written_at": written}
            for i, (b, k, v) in enumerate(kv)
        ],
    )
    seed(
        engine,
        kv_mirror_status,
        [
            {"bucket": b, "synced_at": ts(-M), "changed_at": None, "key_count": 1}
            for b in ("schedules", "jobs", "fleet_config", "agent_groups", "agent_groups_derived")
        ],
    )
    seed(
        engine,
        schedule_fires,
        [
            {
                "schedule_id": "nightly",
                "job_id": "inv-hw",
                "due_at": ts(-60 * M),
                "decided_at": ts(-60 * M),
                "outcome": "fired",
                "exec_id": "exec-1",
                "target_count": 3,
                "last_due_at": ts(-60 * M),
                "repeats": 1,
            },
            {
                "schedule_id": "catch-up",
                "job_id": "inv-hw",
                "due_at": ts(-10 * M),
                "decided_at": ts(-M),
                "outcome": "skipped",
                "reason": "no eligible PC",
                "last_due_at": ts(-M),
                "repeats": 10,
            },
        ],
    )
    seed(
        engine,
        scheduler_rejects,
        [
            {
                "kind": "schedule",
                "key": "broken",
                "revision": 4,
                "error": "when: expected an object",
                "seen_at": ts(-M),
            }
        ],
    )
    seed(
        engine,
        projector_checkpoints,
        [
            {
                "projector": "results",
                "stream": "RESULTS",
                "durable": "backend_results_projector",
                "last_seq": 4,
                "last_message_at": ts(-50 * M),
                "stream_created": ts(-1000 * M),
                "updated_at": ts(-10 * timedelta(seconds=1)),
            }
        ],
    )
    seed(
        engine,
        projector_rejects,
        [
            {
                "projector": "results",
                "stream": "RESULTS",
                "stream_seq": 3,
                "subject": "results.pc-001",
                "error": "field 'exit_code': expected an integer",
                "payload": b"\xff\xfe not utf-8",
                "payload_size": 100,
                "published_at": ts(-52 * M),
                "recorded_at": ts(-52 * M),
            },
            {
                "projector": "heartbeat",
                "stream": None,
                "stream_seq": None,
                "subject": "heartbeat.pc-002",
                "error": "not JSON",
                "payload": b"hello",
                "payload_size": 5,
                "published_at": None,
                "recorded_at": ts(-5 * M),
            },
        ],
    )
    seed(
        engine,
        projector_gaps,
        [
            {
                "projector": "results",
                "stream": "RESULTS",
                "from_seq": 1,
                "to_seq": 2,
                "missing": 2,
                "detected_at": ts(-100 * M),
            }
        ],
    )
    observed = ts(-timedelta(seconds=3))
    seed(
        engine,
        broker_streams,
        [
            {
                "stream": "RESULTS",
                "messages": 4,
                "bytes": 4000,
                "first_seq": 1,
                "last_seq": 6,
                "consumers": 1,
                "observed_at": observed,
            }
        ],
    )
    seed(
        engine,
        broker_consumers,
        [
            {
                "stream": "RESULTS",
                "durable": "backend_results_projector",
                "pending": 2,
                "ack_pending": 0,
                "redelivered": 0,
                "ack_floor_seq": 4,
                "delivered_seq": 4,
                "observed_at": observed,
            }
        ],
    )
    seed(
        engine,
        broker_resources,
        [
            {
                "kind": kind,
                "name": name,
                "present": int(name != "NOTIFICATIONS"),
                "observed_at": observed,
            }
            for kind, names in (
                ("stream", PROBED_STREAMS),
                ("kv", PROBED_KV),
                ("object_store", PROBED_OBJECT_STORES),
            )
            for name in names
        ],
    )
