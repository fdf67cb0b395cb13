"""Calendar triggers: parsing ``when.calendar`` and listing its fire instants.

scheduler.md section 2. A repeating calendar fires at ``at`` on the listed
days in the schedule's zone; a one-shot fires once at a date and time. Day
matching (including ``tue#2`` and ``friL``) is delegated to cronsim over
*wall-clock* times; turning a wall time into an instant is ours, with the DST
rules of the spec: a wall time that does not exist that day is skipped, one
that occurs twice fires once, at the earlier instant.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from cronsim import CronSim, CronSimError

from .zones import wall_to_instant


class WhenError(ValueError):
    """A ``when`` that cannot be fired; the message names the field."""


DAY_NUMBERS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_DAY = r"(?:sun|mon|tue|wed|thu|fri|sat|[0-7])"
_RANGE = re.compile(rf"({_DAY})-({_DAY})")
_NTH = re.compile(rf"({_DAY})#([1-5])")
_LAST = re.compile(rf"({_DAY})l")  # matched after lower-casing: friL -> fril
_AT = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_ONE_SHOT = re.compile(r"(\d{4})[-/](\d{2})[-/](\d{2})[ T]([01]\d|2[0-3]):([0-5]\d)")
# Searching this far ahead finds the next fire of any valid day list (a
# "5th Friday" can be three months away).
_HORIZON = timedelta(days=400)


def _day_number(token: str) -> int:
    number = DAY_NUMBERS[token] if token in DAY_NUMBERS else int(token)
    return 0 if number == 7 else number  # 0 and 7 are both Sunday


def _day_term(token: str) -> str:
    """One ``days`` token as a cron day-of-week term."""
    token = token.strip().lower()
    if token == "*":
        return "*"
    if re.fullmatch(_DAY, token):
        return str(_day_number(token))
    if m := _RANGE.fullmatch(token):
        first, last = _day_number(m[1]), _day_number(m[2])
        if first <= last:
            return f"{first}-{last}"
        # A range across the weekend (fri-mon): cron has no wrapping ranges.
        return ",".join(str(d % 7) for d in range(first, last + 8))
    if m := _NTH.fullmatch(token):
        return f"{_day_number(m[1])}#{m[2]}"
    if m := _LAST.fullmatch(token):
        return f"{_day_number(m[1])}L"
    raise WhenError(
        f"when.calendar.days: unknown day {token!r} (expected mon..sun, 0..7, a range"
        " such as mon-fri, *, tue#2 or friL)"
    )


def days_field(days: Any) -> str:
    """The cron day-of-week field for a ``days`` list; ``*`` when absent."""
    if days is None:
        return "*"
    if not isinstance(days, list) or not all(isinstance(d, str) for d in days) or not days:
        raise WhenError(f"when.calendar.days: expected a non-empty list of strings, got {days!r}")
    return ",".join(_day_term(d) for d in days)


@dataclass(frozen=True)
class Repeating:
    """``at`` (hour, minute) on the days of a cron day-of-week field."""

    hour: int
    minute: int
    days: str

    def walls_after(self, wall: datetime) -> Iterator[datetime]:
        """Matching wall-clock times strictly after ``wall`` (naive), in order."""
        return CronSim(f"{self.minute} {self.hour} * * {self.days}", wall)


@dataclass(frozen=True)
class OneShot:
    """A single wall-clock date and time."""

    wall: datetime


CalendarRule = Repeating | OneShot


def parse_calendar(spec: Any) -> CalendarRule:
    """``when.calendar`` as a rule, or WhenError naming what is wrong."""
    if not isinstance(spec, Mapping):
        raise WhenError(f"when.calendar: expected an object, got {spec!r}")
    at = spec.get("at")
    if not isinstance(at, str):
        raise WhenError(f"when.calendar.at: expected a string, got {at!r}")
    if m := _AT.fullmatch(at.strip()):
        rule = Repeating(int(m[1]), int(m[2]), days_field(spec.get("days")))
        try:
            CronSim(f"{rule.minute} {rule.hour} * * {rule.days}", datetime(2000, 1, 1))
        except CronSimError as exc:
            raise WhenError(f"when.calendar.days: {exc}") from None
        return rule
    if m := _ONE_SHOT.fullmatch(at.strip()):
        if spec.get("days") is not None:
            raise WhenError("when.calendar.days: not allowed with a one-shot date")
        try:
            wall = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]))
        except ValueError as exc:
            raise WhenError(f"when.calendar.at: {exc} in {at!r}") from None
        return OneShot(wall)
    raise WhenError(
        f"when.calendar.at: expected HH:MM or a date and time (YYYY-MM-DD HH:MM), got {at!r}"
    )


def fires_between(
    rule: CalendarRule, zone: tzinfo, after: datetime, until: datetime
) -> list[datetime]:
    """Fire instants ``t`` with ``after < t <= until`` (aware datetimes), in order."""
    if isinstance(rule, OneShot):
        instant = wall_to_instant(rule.wall, zone)
        return [instant] if instant is not None and after < instant <= until else []
    fires: list[datetime] = []
    # Start a day early: wall times and instants differ by the zone's offset.
    start = (after.astimezone(zone) - timedelta(days=1)).replace(tzinfo=None)
    last_wall = until.astimezone(zone).replace(tzinfo=None) + timedelta(days=1)
    for wall in rule.walls_after(start):
        if wall > last_wall:
            break
        instant = wall_to_instant(wall, zone)
        if instant is not None and after < instant <= until:
            fires.append(instant)
    return fires


def next_fire(rule: CalendarRule, zone: tzinfo, after: datetime) -> datetime | None:
    """The first fire instant strictly after ``after``; None if there is none."""
    if isinstance(rule, OneShot):
        fires = fires_between(rule, zone, after, datetime.max.replace(tzinfo=after.tzinfo))
        return fires[0] if fires else None
    window = timedelta(days=8)
    horizon = after + _HORIZON
    start = after
    while start < horizon:
        fires = fires_between(rule, zone, start, start + window)
        if fires:
            return fires[0]
        start += window
    return None
