"""Time buckets of the perf and process charts (api.md 3.4, 3.5).

A chart request names a window ``[from, to)`` and a ``step``; a sample at
``at`` belongs to the bucket starting at ``floor(unix(at) / step) * step``.
This module validates the three parameters by the API's 400 rules and does
the bucket arithmetic, in Python and as an SQL expression over stored text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, cast, func, literal_column

from .params import Param, ParamError
from .wire_time import api_time_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_BUCKETS = 10_000
DEFAULT_SPAN = timedelta(hours=1)  # ``from`` defaults to ``to`` minus this
SECOND = timedelta(seconds=1)
_FIRST_UNIX = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // SECOND  # 0001-01-01T00:00:00Z


def unix_seconds(value: datetime) -> int:
    """Whole seconds since the Unix epoch, rounded down (exact for any aware datetime)."""
    return (value - EPOCH) // SECOND


def whole_seconds(name: str, value: timedelta) -> int:
    """A positive duration parameter in whole seconds (fractions dropped, as the
    original's ``as_secs()``); below one second is a 400 naming ``name``."""
    seconds = value // SECOND
    if seconds < 1:
        raise ParamError(name, "a duration of at least 1s")
    return seconds


@dataclass(frozen=True)
class Buckets:
    """A validated chart window: ``start`` inclusive, ``end`` exclusive, ``step`` seconds."""

    start: datetime
    end: datetime
    step: int

    def floor(self, unix: int) -> int:
        """The start (Unix seconds) of the bucket holding second ``unix``."""
        return unix - unix % self.step  # Python's % is a floor modulo, also below 1970

    def at(self, bucket: int) -> str:
        """A bucket start as API text."""
        return api_time_of(EPOCH + timedelta(seconds=bucket))

    def header(self) -> dict[str, Any]:
        """The ``from``, ``to`` and ``step_seconds`` keys every chart response carries."""
        return {
            "from": api_time_of(self.start),
            "to": api_time_of(self.end),
            "step_seconds": self.step,
        }

    def sql_bucket(self, column: Any) -> Any:
        """SQL for the bucket start (Unix seconds) of a stored-text timestamp column.

        The first 19 characters are the whole second (stored text has one fixed
        format), so ``strftime('%s')`` is exact and the fraction cannot change
        the bucket. SQLite's ``%`` truncates towards zero; ``((u % s) + s) % s``
        is the floor modulo, so instants before 1970 land in the right bucket.
        """
        unix = cast(func.strftime("%s", func.substr(column, 1, 19)), Integer)
        step = literal_column(str(int(self.step)), Integer)
        return unix - (unix % step + step) % step


def chart_window(
    start: datetime | None, end: datetime | None, step: timedelta, now: datetime
) -> Buckets:
    """Apply the defaults (``to`` = now, ``from`` = ``to`` - 1 h) and the 400 rules.

    Rules: ``step`` of at least one second; ``from`` before ``to``; at most
    10,000 buckets, i.e. ``(to - from) / step <= 10000``; every bucket start
    representable (years from 1 on; timestamps themselves are checked on parse).
    """
    seconds = whole_seconds("step", step)
    end = now if end is None else end
    if start is None:
        try:
            start = end - DEFAULT_SPAN
        except OverflowError:
            raise ParamError("from", "a bound from year 1 on (default: to - 1h)") from None
    if start >= end:
        raise ParamError("from", "a time before 'to'")
    span_us = (end - start) // timedelta(microseconds=1)
    if span_us > MAX_BUCKETS * seconds * 1_000_000:
        fewest = -(-span_us // (MAX_BUCKETS * 1_000_000))
        raise ParamError(
            "step", f"a step giving at most {MAX_BUCKETS} buckets in the window (>= {fewest}s)"
        )
    buckets = Buckets(start, end, seconds)
    if buckets.floor(unix_seconds(start)) < _FIRST_UNIX:
        raise ParamError("step", "a step whose first bucket starts in year 1 or later")
    return buckets


def window_params(default_step: str) -> tuple[Param, ...]:
    """The ``from``, ``to`` and ``step`` parameters of a chart endpoint."""
    return (
        Param("from", "timestamp", "Start of the window (inclusive). Default: to - 1h."),
        Param("to", "timestamp", "End of the window (exclusive). Default: now."),
        Param(
            "step",
            "duration",
            "Bucket width, a humantime duration of at least 1s (fractions of a second are "
            f"dropped); at most {MAX_BUCKETS} buckets. Default: {default_step}.",
        ),
    )
