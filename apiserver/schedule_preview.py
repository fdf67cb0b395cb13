"""A schedule's timing as a reader sees it: the ``when`` one-liner and its next fires.

Fire instants come from projectord's own scheduler code (``calendar_fires`` for
the instants and their DST rules, ``gates`` for ``active``, ``constraints.window``
and ``skip_dates``), so a preview says what the scheduler will do, in the
schedule's zone (``local``, ``utc`` or an IANA name). The fleet-wide freeze is
not applied (scheduler.md 10): it is shown by ``/api/freeze`` instead.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from itertools import islice
from typing import Any

from projectord.scheduler.calendar_fires import CalendarRule, OneShot, Repeating, fires_between
from projectord.scheduler.gates import (
    active_reason,
    constraints_reason,
    parse_bound,
    window_contains,
)
from projectord.scheduler.schedule import Schedule
from projectord.scheduler.triggers import AgentEvent, Calendar, Reconcile

# How far ahead a repeating calendar is searched. The sparsest repeating rule
# ("tue#5") fires about four times a year, so this finds dozens of fires for any
# rule while bounding the work for one that the gates block for good.
HORIZON = timedelta(days=3660)
_CHUNK = timedelta(days=92)
_LASTING = 3  # candidates in a row blocked for one same reason
RECONCILE_NOTE = "polls every minute gated by cooldown"


@dataclass(frozen=True)
class Preview:
    """The next fire instants (UTC, ascending) and, when there are none, why."""

    fires: list[datetime]
    note: str | None


def when_display(when: Mapping[str, Any]) -> str:
    """The operator one-liner of a valid ``when``, spelled as the original's dashboard.

    ``per_pc once``, ``per_pc every 6h``, ``per_target once``, ``at 09:00``,
    ``at 09:00 [mon-fri]``, ``at 2026-07-01 09:00``; agent events read
    ``on startup,logon``. The text is taken from the stored object (``every``
    and ``days`` exactly as written), which the parsed trigger no longer holds.
    """
    ((shape, value),) = when.items()
    if shape in ("per_pc", "per_target"):
        policy = value if isinstance(value, str) else f"every {value['every'].strip()}"
        return f"{shape} {policy}"
    if shape == "calendar":
        days = value.get("days")
        at = f"at {value['at'].strip()}"
        return f"{at} [{','.join(days)}]" if days else at
    return "on " + ",".join(value)


def blocked_reason(schedule: Schedule, instant: datetime) -> str | None:
    """Why the scheduler's gates would skip a fire of ``schedule`` at ``instant`` (None: fires).

    A constraint of the wrong JSON type (``skip_dates: true``) makes the gate
    raise; the scheduler then records the tick as failed, so it does not fire.
    """
    try:
        return active_reason(schedule.active, schedule.zone, instant) or constraints_reason(
            schedule.constraints, schedule.zone, instant
        )
    except TypeError as exc:
        return f"failed (TypeError: {exc})"


def _active_span(schedule: Schedule, now: datetime) -> tuple[datetime, datetime | None]:
    """Where to search: from ``now`` (or ``active.from``) to ``active.until`` (None: open).

    Only narrows the search; the active gate is still applied to every instant.
    A bound that does not parse makes the gate fail open, so nothing is narrowed.
    """
    active = schedule.active
    try:
        start = active.get("from")
        until = active.get("until")
        first = parse_bound(start, schedule.zone) if start is not None else None
        last = parse_bound(until, schedule.zone) if until is not None else None
    except (ValueError, TypeError):
        return now, None
    # fires_between is exclusive of its start and the active window includes ``from``.
    begin = max(now, first - timedelta(microseconds=1)) if first is not None else now
    return begin, last


def _window_excludes(schedule: Schedule, rule: Repeating) -> str | None:
    """Why a repeating rule can never fire because of ``constraints.window``, or None.

    A fire's local wall time is always the rule's ``at`` (a wall time skipped by
    DST does not fire at all), so the window decides once for every day.
    """
    window = schedule.constraints.get("window")
    if window is None:
        return None
    try:
        if window_contains(window, time(rule.hour, rule.minute)):
            return None
    except ValueError as exc:
        return f"never fires: blocked ({exc})"
    return f"never fires: at {rule.hour:02d}:{rule.minute:02d} is outside window {window}"


def _repeating(
    schedule: Schedule, rule: Repeating, now: datetime, stopped: list[str]
) -> Iterator[datetime]:
    """Gated fires of a repeating rule; a reason blocking every candidate ends the search.

    Day-specific blocks name their day (``skip date ...``) and the active window
    is searched only where it is open, so one reason blocking several days in a
    row is a lasting one (a bad ``skip_dates`` entry, an unreadable window): it
    is put in ``stopped`` instead of walking the whole horizon.
    """
    start, until = _active_span(schedule, now)
    stop = now + HORIZON if until is None else min(now + HORIZON, until)
    last, streak = None, 0
    while start < stop:
        end = min(start + _CHUNK, stop)
        for instant in fires_between(rule, schedule.zone, start, end):
            reason = blocked_reason(schedule, instant)
            if reason is None:
                last, streak = None, 0
                yield instant
                continue
            last, streak = reason, (streak + 1 if reason == last else 1)
            if streak >= _LASTING:
                stopped.append(reason)
                return
        start = end


def fires_after(
    schedule: Schedule, now: datetime, stopped: list[str] | None = None
) -> Iterator[datetime]:
    """Instants after ``now`` at which the scheduler would fire ``schedule``, ascending.

    Empty for a disabled or agent-run schedule and for the shapes without fire
    instants (per_pc, per_target, on). Lazy: take what you need. A search ended
    by a lasting block appends the reason to ``stopped``.
    """
    trigger = schedule.trigger
    if not schedule.enabled or schedule.runs_on_agent or not isinstance(trigger, Calendar):
        return iter(())
    rule: CalendarRule = trigger.rule
    if isinstance(rule, OneShot):
        far = datetime.max.replace(tzinfo=UTC)
        return (
            t
            for t in fires_between(rule, schedule.zone, now, far)
            if blocked_reason(schedule, t) is None
        )
    if _window_excludes(schedule, rule):
        return iter(())
    return _repeating(schedule, rule, now, [] if stopped is None else stopped)


def _empty_note(schedule: Schedule, now: datetime, stopped: list[str]) -> str:
    """Why a schedule has no upcoming fire."""
    trigger = schedule.trigger
    if not schedule.enabled:
        return "disabled: no fires until it is enabled"
    if schedule.runs_on_agent:
        return "runs_on agent: the agents fire it, not the backend"
    if isinstance(trigger, Reconcile):
        return RECONCILE_NOTE
    if isinstance(trigger, AgentEvent):
        return "agent-side event trigger: the agents fire it"
    assert isinstance(trigger, Calendar)
    rule = trigger.rule
    if isinstance(rule, OneShot):
        far = datetime.max.replace(tzinfo=UTC)
        instants = fires_between(rule, schedule.zone, now, far)
        if not instants:
            return "one-shot: its time has passed (or does not exist in the zone)"
        return f"one-shot: blocked ({blocked_reason(schedule, instants[0])})"
    if stopped:
        return f"never fires: {stopped[0]}"
    return _window_excludes(schedule, rule) or f"no fire in the next {HORIZON.days} days"


def preview(schedule: Schedule, now: datetime, count: int) -> Preview:
    """The next ``count`` fires of ``schedule`` after ``now``, with a note when there are none."""
    stopped: list[str] = []
    fires = list(islice(fires_after(schedule, now, stopped), count))
    return Preview(fires, None if fires else _empty_note(schedule, now, stopped))


def soonest(
    schedules: Iterable[Schedule], now: datetime, limit: int
) -> list[tuple[datetime, Schedule]]:
    """The ``limit`` soonest fires over ``schedules``, by instant then schedule id.

    Each schedule's fires are generated lazily and merged, so only about
    ``limit`` instants are computed however many schedules there are.
    """
    merged = heapq.merge(*(_keyed(s, now) for s in schedules), key=lambda item: item[:2])
    return [(t, s) for t, _, s in islice(merged, limit)]


def _keyed(schedule: Schedule, now: datetime) -> Iterator[tuple[datetime, str, Schedule]]:
    for instant in fires_after(schedule, now):
        yield instant, schedule.id, schedule
