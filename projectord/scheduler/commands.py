"""Building what a fire publishes: subjects and Command bodies (wire-contract 6.8).

Pure: ids, times and the script digest are passed in, so a test can build
the exact bytes an agent would receive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..timestamps import format_wire
from .manifest import Manifest
from .schedule import Schedule, Target

AUDIT_SUBJECTS_MAX = 1000


def subjects_for(target: Target) -> list[str]:
    """One subject per addressee, in the original's order: all, groups, pcs."""
    subjects = ["commands.all"] if target.all else []
    subjects += [f"commands.group.{g}" for g in target.groups]
    subjects += [f"commands.pc.{pc}" for pc in target.pcs]
    return subjects


def _whole_seconds(value: timedelta) -> int:
    return int(value.total_seconds())


@dataclass(frozen=True)
class Fire:
    """What one fire decided: the same for every Command it publishes."""

    exec_id: str
    deadline_at: datetime | None
    script_sha256: str | None = None


def command_body(manifest: Manifest, schedule: Schedule, fire: Fire, request_id: str) -> bytes:
    """The Command JSON for one subject, as compact as serde writes it."""
    body: dict[str, Any] = {
        "id": manifest.id,
        "version": manifest.version,
        "request_id": request_id,
        "exec_id": fire.exec_id,
        "shell": manifest.shell,
        "script": manifest.script,
    }
    if manifest.script_object:
        body["script_object"] = manifest.script_object
        body["script_object_sha256"] = fire.script_sha256
    body["timeout_secs"] = max(1, _whole_seconds(manifest.timeout))
    if schedule.jitter is not None:
        body["jitter_secs"] = _whole_seconds(schedule.jitter)
    body["run_as"] = manifest.run_as
    if manifest.cwd:
        body["cwd"] = manifest.cwd
    if fire.deadline_at is not None:
        body["deadline_at"] = format_wire(fire.deadline_at)
    body["staleness"] = dict(manifest.staleness)
    body.update(manifest.extras)
    if schedule.retry_max:
        body["retry"] = {
            "max": schedule.retry_max,
            "backoff_secs": _whole_seconds(schedule.retry_backoff),
        }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def audit_body(
    manifest: Manifest,
    fire: Fire,
    target_count: int,
    subjects: list[str],
    wave_mode: bool,
    occurred_at: datetime,
) -> bytes:
    """The ``scheduler`` / ``exec`` audit event of a fire (wire-contract 6.7).

    A per-PC fire over a large fleet has one subject per PC; the list is cut at
    ``AUDIT_SUBJECTS_MAX`` (``subjects_truncated`` says how many more) to stay
    far below the broker's message size limit.
    """
    payload: dict[str, Any] = {
        "exec_id": fire.exec_id,
        "version": manifest.version,
        "target_count": target_count,
        "subjects": subjects[:AUDIT_SUBJECTS_MAX],
        "wave_mode": wave_mode,
    }
    if len(subjects) > AUDIT_SUBJECTS_MAX:
        payload["subjects_truncated"] = len(subjects) - AUDIT_SUBJECTS_MAX
    body = {
        "actor": "scheduler",
        "action": "exec",
        "target": manifest.id,
        "payload": payload,
        "occurred_at": format_wire(occurred_at),
    }
    return json.dumps(body, separators=(",", ":")).encode()
