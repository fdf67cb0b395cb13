"""What a simulated agent does with a Command (pure).

As a real agent: sleep a random 0..jitter, then refuse with the synthetic
code 125 (``skipped``) if the Command's ``deadline_at`` has passed, else run:
publish ``events.started``, work for a while, publish the result. Outputs
above 256 KiB go to the ``result_output`` object store (wire-contract 4).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..timestamps import TimestampError, parse_rfc3339
from .fleet import SimAgent, output_text, wire_time

OVERFLOW_BYTES = 256 * 1024
EXIT_DEADLINE = 125


class CommandError(ValueError):
    """A Command the agent cannot read (it would log and drop it)."""


@dataclass(frozen=True)
class Command:
    job_id: str
    version: str
    request_id: str
    exec_id: str
    timeout: timedelta
    jitter: timedelta
    deadline_at: datetime | None


def parse_command(data: bytes) -> Command:
    try:
        body = json.loads(data)
        deadline = body.get("deadline_at")
        return Command(
            job_id=str(body["id"]),
            version=str(body["version"]),
            request_id=str(body["request_id"]),
            exec_id=str(body.get("exec_id") or body.get("job_id") or ""),
            timeout=timedelta(seconds=int(body["timeout_secs"])),
            jitter=timedelta(seconds=int(body.get("jitter_secs") or 0)),
            deadline_at=parse_rfc3339(deadline) if deadline else None,
        )
    except (ValueError, KeyError, TypeError, TimestampError) as exc:
        raise CommandError(f"undecodable Command: {exc}") from None


@dataclass(frozen=True)
class RunPlan:
    """When to start (after jitter), how long to run, and what to report."""

    delay: float  # seconds of jitter before starting
    duration: float  # seconds the script "runs"
    exit_code: int
    stdout: str
    stderr: str


def plan_run(agent: SimAgent, cmd: Command, duration_scale: float, allow_overflow: bool) -> RunPlan:
    """Jitter, duration, exit code (90 % 0) and output; 1 % of outputs overflow to
    the object store when ``allow_overflow``."""
    rng = agent.rng
    delay = rng.uniform(0, cmd.jitter.total_seconds())
    duration = min(cmd.timeout.total_seconds(), rng.uniform(0.2, 2.0) * duration_scale)
    roll = rng.random()
    exit_code = 0 if roll < 0.9 else 1 if roll < 0.97 else 2
    large = allow_overflow and rng.random() < 0.01
    size = OVERFLOW_BYTES + 4096 if large else rng.randint(100, 2000)
    stdout = output_text(rng, size)
    stderr = "" if exit_code == 0 else "Get-CimInstance : Access denied\r\n"
    return RunPlan(delay, duration, exit_code, stdout, stderr)


def started_body(agent: SimAgent, cmd: Command, result_id: str, started: datetime) -> bytes:
    body = {
        "result_id": result_id,
        "request_id": cmd.request_id,
        "exec_id": cmd.exec_id,
        "pc_id": agent.pc_id,
        "started_at": wire_time(started),
        "manifest_id": cmd.job_id,
        "version": cmd.version,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def result_body(
    agent: SimAgent,
    cmd: Command,
    result_id: str,
    started: datetime,
    finished: datetime,
    exit_code: int,
    stdout: str,
    stderr: str,
    skipped: bool = False,
    stdout_object: str | None = None,
) -> bytes:
    body: dict[str, Any] = {
        "result_id": result_id,
        "request_id": cmd.request_id,
        "exec_id": cmd.exec_id,
        "pc_id": agent.pc_id,
        "exit_code": exit_code,
    }
    if skipped:
        body["skipped"] = True
    body.update(
        stdout="" if stdout_object else stdout,
        stderr=stderr,
        started_at=wire_time(started),
        finished_at=wire_time(finished),
    )
    if stdout_object:
        body["stdout_object"] = stdout_object
    body["manifest_id"] = cmd.job_id
    return json.dumps(body, separators=(",", ":")).encode()


def new_result_id() -> str:
    return str(uuid.uuid4())
