"""Humantime durations (``"30s"``, ``"1h 30m"``) as the agents' manifests spell them."""

from __future__ import annotations

import re
from datetime import timedelta

_SECONDS_PER_UNIT = {
    **dict.fromkeys(("ns", "nsec", "nanos"), 1e-9),
    **dict.fromkeys(("us", "usec", "micros"), 1e-6),
    **dict.fromkeys(("ms", "msec", "millis"), 1e-3),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
    **dict.fromkeys(("w", "week", "weeks"), 7 * 86400.0),
    **dict.fromkeys(("M", "month", "months"), 30.44 * 86400.0),
    **dict.fromkeys(("y", "year", "years"), 365.25 * 86400.0),
}
_TERM = re.compile(r"\s*(\d+)\s*([A-Za-z]+)")


class DurationError(ValueError):
    """A duration string does not follow the humantime grammar."""


def parse_duration(text: str) -> timedelta:
    """Parse a humantime string into a timedelta.

    A bare number, a negative value, an unknown unit or an empty string is an
    error: the wire contract says so, and a silent default would hide typos.
    """
    if not isinstance(text, str) or not text.strip():
        raise DurationError(f"expected a duration such as '30s' or '1h 30m', got {text!r}")
    pos, total = 0, 0.0
    stripped = text.strip()
    while pos < len(stripped):
        m = _TERM.match(stripped, pos)
        if m is None:
            raise DurationError(f"invalid duration {text!r} (each number needs a unit)")
        unit = m.group(2)
        factor = _SECONDS_PER_UNIT.get(unit)
        if factor is None:
            raise DurationError(f"unknown unit {unit!r} in duration {text!r}")
        try:
            total += int(m.group(1)) * factor
        except OverflowError:
            raise DurationError(f"duration {text!r} is too large") from None
        pos = m.end()
    try:
        return timedelta(seconds=total)
    except OverflowError:
        raise DurationError(f"duration {text!r} is too large") from None
