"""A Schedule read from KV ``schedules`` (wire-contract 6.10), validated.

Every problem raises ScheduleError naming the field, so a bad schedule is
logged, recorded and skipped with a reason an operator can act on, and never
stops the scheduler. ``active`` and ``constraints`` bounds are kept as written:
the gates apply their own failure direction at tick time (scheduler.md 3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import Any

from ..humantime import DurationError, parse_duration
from .calendar_fires import WhenError
from .triggers import Trigger, parse_when
from .zones import ZoneError, resolve_zone


class ScheduleError(ValueError):
    """The schedule cannot be registered; the message names the field."""


@dataclass(frozen=True)
class Target:
    all: bool = False
    groups: tuple[str, ...] = ()
    pcs: tuple[str, ...] = ()

    @property
    def specified(self) -> bool:
        return self.all or bool(self.groups) or bool(self.pcs)


@dataclass(frozen=True)
class Wave:
    group: str
    delay: timedelta


@dataclass(frozen=True)
class Schedule:
    id: str
    trigger: Trigger
    job_id: str
    zone: tzinfo
    target: Target = Target()
    waves: tuple[Wave, ...] = ()
    jitter: timedelta | None = None
    starting_deadline: timedelta | None = None
    retry_max: int = 0
    retry_backoff: timedelta = timedelta(0)
    max_concurrent: int | None = None
    active: Mapping[str, Any] = field(default_factory=dict)
    constraints: Mapping[str, Any] = field(default_factory=dict)
    runs_on_agent: bool = False
    enabled: bool = True


def _str_list(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ScheduleError(f"{name}: expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def _duration(body: Mapping[str, Any], key: str, name: str | None = None) -> timedelta | None:
    value = body.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise DurationError(f"expected a duration string such as '10m', got {value!r}")
        return parse_duration(value)
    except DurationError as exc:
        raise ScheduleError(f"{name or key}: {exc}") from None


def _object(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ScheduleError(f"{key}: expected an object, got {value!r}")
    return value


def _target(body: Mapping[str, Any]) -> Target:
    raw = _object(body, "target")
    everyone = raw.get("all", False)
    if not isinstance(everyone, bool):
        raise ScheduleError(f"target.all: expected true or false, got {everyone!r}")
    return Target(
        everyone,
        _str_list(raw.get("groups"), "target.groups"),
        _str_list(raw.get("pcs"), "target.pcs"),
    )


def _waves(body: Mapping[str, Any]) -> tuple[Wave, ...]:
    rollout = _object(body, "rollout")
    if not rollout:
        return ()
    if rollout.get("strategy", "wave") != "wave":
        raise ScheduleError(f"rollout.strategy: expected 'wave', got {rollout.get('strategy')!r}")
    waves = rollout.get("waves") or []
    if not isinstance(waves, list):
        raise ScheduleError(f"rollout.waves: expected a list, got {waves!r}")
    out = []
    for i, wave in enumerate(waves):
        where = f"rollout.waves[{i}]"
        if (
            not isinstance(wave, Mapping)
            or not isinstance(wave.get("group"), str)
            or not wave["group"]
        ):
            raise ScheduleError(f"{where}.group: expected a group name, got {wave!r}")
        out.append(Wave(wave["group"], _duration(wave, "delay", f"{where}.delay") or timedelta(0)))
    return tuple(out)


def _retry(body: Mapping[str, Any]) -> tuple[int, timedelta]:
    retry = _object(_object(body, "on_failure"), "retry")
    if not retry:
        return 0, timedelta(0)
    count = retry.get("max")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10:
        raise ScheduleError(
            f"on_failure.retry.max: expected an integer from 1 to 10, got {count!r}"
        )
    return count, _duration(retry, "backoff", "on_failure.retry.backoff") or timedelta(0)


def parse_schedule(key: str, raw: bytes | str) -> Schedule:
    """The schedule stored under ``key``, or ScheduleError saying what is wrong."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ScheduleError(f"value is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ScheduleError("value must be a JSON object")
    if body.get("id") != key:
        raise ScheduleError(f"id: expected {key!r} (the KV key), got {body.get('id')!r}")
    job_id = body.get("job_id")
    if not isinstance(job_id, str) or not job_id:
        raise ScheduleError(f"job_id: expected a non-empty string, got {job_id!r}")
    try:
        trigger = parse_when(body.get("when"))
    except WhenError as exc:
        raise ScheduleError(str(exc)) from None
    tz = body.get("tz") or "local"
    if not isinstance(tz, str):
        raise ScheduleError(f"tz: expected 'local', 'utc' or an IANA zone name, got {tz!r}")
    try:
        zone = resolve_zone(tz)
    except (ZoneError, TypeError) as exc:
        raise ScheduleError(f"tz: {exc}") from None
    runs_on = body.get("runs_on", "backend")
    if runs_on not in ("backend", "agent"):
        raise ScheduleError(f"runs_on: expected 'backend' or 'agent', got {runs_on!r}")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ScheduleError(f"enabled: expected true or false, got {enabled!r}")
    constraints = _object(body, "constraints")
    max_concurrent = constraints.get("max_concurrent")
    if max_concurrent is not None and (
        isinstance(max_concurrent, bool)
        or not isinstance(max_concurrent, int)
        or max_concurrent < 0
    ):
        raise ScheduleError(
            f"constraints.max_concurrent: expected a non-negative integer, got {max_concurrent!r}"
        )
    retry_max, retry_backoff = _retry(body)
    return Schedule(
        id=key,
        trigger=trigger,
        job_id=job_id,
        zone=zone,
        target=_target(body),
        waves=_waves(body),
        jitter=_duration(body, "jitter"),
        starting_deadline=_duration(body, "starting_deadline"),
        retry_max=retry_max,
        retry_backoff=retry_backoff,
        max_concurrent=max_concurrent,
        active=_object(body, "active"),
        constraints=constraints,
        runs_on_agent=runs_on == "agent",
        enabled=enabled,
    )
