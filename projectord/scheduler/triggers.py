"""Lowering a schedule's ``when`` to a trigger (scheduler.md section 2).

* ``per_pc`` / ``per_target`` (``once`` or ``{"every": D}``) are *reconcile*
  shapes: evaluated every minute against what the database says has succeeded,
  so they catch up by themselves after downtime;
* ``calendar`` fires at discrete instants (see ``calendar_fires``);
* ``on`` is fired by agents; the backend never fires it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..humantime import DurationError, parse_duration
from .calendar_fires import CalendarRule, WhenError, parse_calendar


@dataclass(frozen=True)
class Reconcile:
    """Once-per-PC (``per_pc``) or once-per-target (``per_target``), with a cooldown."""

    per_pc: bool
    cooldown: timedelta | None  # None: once, never re-armed


@dataclass(frozen=True)
class Calendar:
    rule: CalendarRule


@dataclass(frozen=True)
class AgentEvent:
    """``on: [...]``: agent-side triggers; the backend records them as skipped."""

    events: tuple[str, ...]


Trigger = Reconcile | Calendar | AgentEvent


def _reconcile(shape: str, value: Any) -> Reconcile:
    per_pc = shape == "per_pc"
    if value == "once":
        return Reconcile(per_pc, None)
    if isinstance(value, Mapping) and set(value) == {"every"}:
        every = value["every"]
        try:
            cooldown = parse_duration(every) if isinstance(every, str) else None
        except DurationError as exc:
            raise WhenError(f"when.{shape}.every: {exc}") from None
        if cooldown is None or cooldown <= timedelta(0):
            raise WhenError(f"when.{shape}.every: expected a positive duration, got {every!r}")
        return Reconcile(per_pc, cooldown)
    raise WhenError(f'when.{shape}: expected "once" or {{"every": "<duration>"}}, got {value!r}')


def parse_when(when: Any) -> Trigger:
    """The trigger of a ``when`` object, or WhenError naming what is wrong."""
    if not isinstance(when, Mapping) or len(when) != 1:
        raise WhenError(
            "when: expected an object with exactly one of per_pc, per_target, calendar, on;"
            f" got {when!r}"
        )
    ((shape, value),) = when.items()
    if shape in ("per_pc", "per_target"):
        return _reconcile(shape, value)
    if shape == "calendar":
        return Calendar(parse_calendar(value))
    if shape == "on":
        if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
            raise WhenError(f"when.on: expected a list of event names, got {value!r}")
        return AgentEvent(tuple(value))
    raise WhenError(f"when: unknown shape {shape!r} (per_pc, per_target, calendar or on)")
