"""The job manifest a fire runs (KV ``jobs``, wire-contract 6.9), validated.

Read at fire time, so an edited job applies from the next tick. A manifest
that does not decode counts as "no such job": the fire is skipped with the
reason, never sent half-built.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..humantime import DurationError, parse_duration

SHELLS = ("powershell", "cmd", "sh", "pwsh")
RUN_AS = ("system", "user", "system_gui")
# Copied into the Command as they are; the scheduler does not interpret them.
PASSED_THROUGH = ("emit", "check", "collect", "finalize")


class ManifestError(ValueError):
    """The job cannot be dispatched; the message names the field."""


@dataclass(frozen=True)
class Manifest:
    id: str
    version: str
    shell: str
    script: str  # "" when script_object is used
    script_object: str | None
    timeout: timedelta
    run_as: str = "system"
    cwd: str | None = None
    controller: bool = False
    staleness: Mapping[str, Any] = field(default_factory=lambda: {"mode": "cached"})
    extras: Mapping[str, Any] = field(default_factory=dict)


def _opt_str(obj: Mapping[str, Any], key: str, name: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise ManifestError(f"{name}: expected a string, got {value!r}")
    return value or None


def parse_manifest(job_id: str, raw: bytes | str) -> Manifest:
    """The manifest stored under ``job_id``, or ManifestError saying what is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ManifestError(f"value is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ManifestError("value must be a JSON object")
    if body.get("id") != job_id:
        raise ManifestError(f"id: expected {job_id!r} (the KV key), got {body.get('id')!r}")
    version = body.get("version")
    if not isinstance(version, str) or not version:
        raise ManifestError(f"version: expected a non-empty string, got {version!r}")
    execute = body.get("execute")
    if not isinstance(execute, dict):
        raise ManifestError(f"execute: expected an object, got {execute!r}")
    shell = execute.get("shell")
    if shell not in SHELLS:
        raise ManifestError(f"execute.shell: expected one of {', '.join(SHELLS)}, got {shell!r}")
    script = _opt_str(execute, "script", "execute.script")
    script_object = _opt_str(execute, "script_object", "execute.script_object")
    if bool(script) == bool(script_object):
        raise ManifestError("execute: exactly one of script and script_object must be set")
    timeout = execute.get("timeout")
    try:
        if not isinstance(timeout, str):
            raise DurationError(f"expected a duration such as '10m', got {timeout!r}")
        timeout_td = parse_duration(timeout)
    except DurationError as exc:
        raise ManifestError(f"execute.timeout: {exc}") from None
    run_as = execute.get("run_as") or "system"
    if run_as not in RUN_AS:
        raise ManifestError(f"execute.run_as: expected one of {', '.join(RUN_AS)}, got {run_as!r}")
    tier = body.get("tier") or "endpoint"
    if tier not in ("endpoint", "controller"):
        raise ManifestError(f"tier: expected 'endpoint' or 'controller', got {tier!r}")
    feed = body.get("feed") or []
    if not isinstance(feed, list):
        raise ManifestError(f"feed: expected a list, got {feed!r}")
    staleness = body.get("staleness") or {"mode": "cached"}
    if not isinstance(staleness, dict):
        raise ManifestError(f"staleness: expected an object, got {staleness!r}")
    extras = {k: body[k] for k in PASSED_THROUGH if body.get(k) is not None}
    return Manifest(
        id=job_id,
        version=version,
        shell=shell,
        script=script or "",
        script_object=script_object,
        timeout=timeout_td,
        run_as=run_as,
        cwd=_opt_str(execute, "cwd", "execute.cwd"),
        controller=tier == "controller" or bool(feed),
        staleness=staleness,
        extras=extras,
    )
