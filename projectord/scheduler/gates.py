"""The time gates a fire passes before anything is read or sent (scheduler.md 3).

Each gate is a pure function of the schedule's fields and ``now`` returning
None (pass) or the reason it blocks, which the scheduler records in
``schedule_fires``. The failure direction follows the original: a freeze or
constraint that cannot be understood blocks (fail closed, an operator asked
for quiet), an ``active`` bound that cannot be understood lets the fire
through (fail open; such schedules are refused when written).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, time, tzinfo
from typing import Any

from ..timestamps import TimestampError, parse_rfc3339
from .zones import ZoneError, local_midnight, resolve_zone

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")


def parse_bound(text: Any, zone: tzinfo) -> datetime:
    """A ``YYYY-MM-DD`` (midnight in ``zone``) or RFC 3339 bound; ValueError otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected a date or an RFC 3339 time, got {text!r}")
    if _DATE.fullmatch(text):
        return local_midnight(text, zone)
    try:
        return parse_rfc3339(text)
    except TimestampError as exc:
        raise ValueError(str(exc)) from None


def _within(bounds: Mapping[str, Any], zone: tzinfo, now: datetime) -> bool:
    """``now`` in the half-open ``[from, until)``; a missing bound is open."""
    start, end = bounds.get("from"), bounds.get("until")
    if start is not None and now < parse_bound(start, zone):
        return False
    return end is None or now < parse_bound(end, zone)


def freeze_reason(raw: bytes | None, now: datetime) -> str | None:
    """Whether KV ``fleet_config/freeze`` stops scheduled fires now.

    No key: not frozen. ``{}``: frozen until the key is deleted. Anything that
    cannot be read (bad JSON, zone or bound) counts as frozen.
    """
    if raw is None:
        return None
    try:
        freeze = json.loads(raw)
        if not isinstance(freeze, dict):
            return "frozen (freeze value is not a JSON object)"
        zone = resolve_zone(freeze.get("tz") or "local")
        if _within(freeze, zone, now):
            reason = freeze.get("reason")
            return f"frozen ({reason})" if isinstance(reason, str) and reason else "frozen"
        return None
    except (ValueError, ZoneError, TypeError) as exc:
        return f"frozen (unreadable freeze: {exc})"


def active_reason(active: Mapping[str, Any] | None, zone: tzinfo, now: datetime) -> str | None:
    """Whether the schedule's ``active`` window excludes ``now`` (fail open)."""
    if not active:
        return None
    try:
        return None if _within(active, zone, now) else "inactive"
    except ValueError:
        return None


def _window(text: Any) -> tuple[time, time]:
    if not isinstance(text, str) or not (m := _WINDOW.fullmatch(text.strip())):
        raise ValueError(f"constraints.window: expected HH:MM-HH:MM, got {text!r}")
    return time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))


def window_contains(text: str, local_time: time) -> bool:
    """``local_time`` in ``[start, end)``; wraps past midnight when start > end.

    start == end is an empty window (it never opens).
    """
    start, end = _window(text)
    if start <= end:
        return start <= local_time < end
    return local_time >= start or local_time < end


def constraints_reason(
    constraints: Mapping[str, Any] | None, zone: tzinfo, now: datetime
) -> str | None:
    """``window`` and ``skip_dates`` in the schedule zone (fail closed)."""
    if not constraints:
        return None
    local = now.astimezone(zone)
    window = constraints.get("window")
    if window is not None:
        try:
            if not window_contains(window, local.time().replace(second=0, microsecond=0)):
                return f"outside window {window}"
        except ValueError as exc:
            return f"blocked ({exc})"
    skip_dates = constraints.get("skip_dates")
    if skip_dates:
        today = local.date().isoformat()
        for entry in skip_dates:
            if not isinstance(entry, str) or not _DATE.fullmatch(entry):
                return f"blocked (constraints.skip_dates: bad date {entry!r})"
            if entry == today:
                return f"skip date {today}"
    return None
