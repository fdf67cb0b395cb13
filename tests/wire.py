"""Message bodies as a Rust agent serialises them (wire-contract.md section 6).

Nanosecond fractions, ``Z`` offsets, optional fields left out unless given.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

BASE = datetime(2026, 5, 20, 12, 0, 0, tzinfo=UTC)


def ts(offset_s: float = 0.0, nanos: int = 123_456_789) -> str:
    """An agent timestamp with a nanosecond fraction."""
    t = BASE + timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def db_ts(offset_s: float = 0.0, nanos: int = 123_456_789) -> str:
    """The same instant in storage format (fraction truncated to microseconds)."""
    t = BASE + timedelta(seconds=offset_s, microseconds=nanos // 1000)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def body(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def _opt(out: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def exec_result(
    result_id: str | None = None,
    *,
    request_id: str = "req-1",
    pc_id: str = "pc1",
    exit_code: int = 0,
    stdout: str = "ok\n",
    stderr: str = "",
    started: float = 0.0,
    finished: float = 5.0,
    exec_id: str | None = None,
    manifest_id: str | None = "inv-hw",
    skipped: bool = False,
    parent_result_id: str | None = None,
    stdout_object: str | None = None,
    stderr_object: str | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if result_id is not None:
        out["result_id"] = result_id
    out.update(
        request_id=request_id,
        pc_id=pc_id,
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        started_at=ts(started),
        finished_at=ts(finished),
    )
    if skipped:
        out["skipped"] = True
    return _opt(
        out,
        exec_id=exec_id,
        manifest_id=manifest_id,
        parent_result_id=parent_result_id,
        stdout_object=stdout_object,
        stderr_object=stderr_object,
    )


def event_started(
    result_id: str,
    *,
    request_id: str = "req-1",
    exec_id: str = "e1",
    pc_id: str = "pc1",
    started: float = 0.0,
    manifest_id: str = "inv-hw",
    version: str = "1.0.0",
) -> dict[str, Any]:
    return {
        "result_id": result_id,
        "request_id": request_id,
        "exec_id": exec_id,
        "pc_id": pc_id,
        "started_at": ts(started),
        "manifest_id": manifest_id,
        "version": version,
    }


def audit_event(
    actor: str = "operator",
    action: str = "exec",
    target: str | None = "inv-hw",
    payload: Any = None,
    occurred: float = 0.0,
) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": action,
        "target": target,
        "payload": payload if payload is not None else {"exec_id": str(uuid.uuid4())},
        "occurred_at": ts(occurred),
    }


def obs_event(
    pc_id: str = "pc1",
    kind: str = "logon",
    source: str = "winlog:Security",
    event_record_id: str | None = "1",
    payload: Any = None,
    at: float = 0.0,
) -> dict[str, Any]:
    return _opt(
        {"pc_id": pc_id, "at": ts(at), "kind": kind, "source": source},
        event_record_id=event_record_id,
        payload=payload,
    )


def heartbeat(pc_id: str = "pc1", at: float = 0.0, **fields: Any) -> dict[str, Any]:
    return _opt({"pc_id": pc_id, "at": ts(at), "agent_version": "0.43.29"}, **fields)


def host_perf(pc_id: str = "pc1", at: float = 0.0, **metrics: Any) -> dict[str, Any]:
    return _opt({"pc_id": pc_id, "at": ts(at)}, **metrics)


def process_perf(pc_id: str = "pc1", at: float = 0.0, processes: Any = None) -> dict[str, Any]:
    return {"pc_id": pc_id, "at": ts(at), "processes": processes or []}


def manifest(job_id: str, timeout: str = "10m", version: str = "1.0.0") -> dict[str, Any]:
    return {
        "id": job_id,
        "version": version,
        "execute": {"shell": "powershell", "script": "Get-Date", "timeout": timeout},
    }
