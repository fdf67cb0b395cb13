"""RFC 3339 timestamps: parse what agents send, store one fixed UTC format.

The database holds every instant as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00`` so that
string order is time order. The original stored a variable fraction and, before
that, mixed ``YYYY-MM-DD HH:MM:SS`` values whose space sorts before ``T``; range
filters silently missed rows. One format, bound from code, ends that class of bug.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})"
    r"(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,  # RFC 3339 digits are 0-9 only, not any Unicode decimal digit
)


class TimestampError(ValueError):
    """A timestamp is not RFC 3339 with an offset."""


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp into an aware UTC datetime.

    Accepts 0-9 fraction digits (truncated to microseconds), ``Z`` or any
    ``±HH:MM`` offset. A timestamp without an offset is rejected: guessing its
    zone would silently shift rows by hours.
    """
    if not isinstance(text, str):
        raise TimestampError(f"expected an RFC 3339 string, got {type(text).__name__}")
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise TimestampError(f"not an RFC 3339 timestamp with an offset: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    micros = int((m.group(7) or "").ljust(6, "0")[:6])
    if m.group(8):
        tz = UTC
    else:
        sign = -1 if m.group(9) == "-" else 1
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise TimestampError(f"offset out of range in {text!r}")
        tz = timezone(sign * timedelta(hours=oh, minutes=om))
    # RFC 3339 allows a leap second (:60); Python cannot represent it, so it is
    # folded onto :59.999999 of the same minute rather than rejecting the message.
    if second == 60:
        second, micros = 59, 999_999
    try:
        value = datetime(year, month, day, hour, minute, second, micros, tzinfo=tz)
    except ValueError as exc:
        raise TimestampError(f"invalid date or time in {text!r}: {exc}") from None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise TimestampError(f"instant out of range in {text!r}") from None


def format_db(value: datetime) -> str:
    """Render an aware datetime in the one storage format (UTC, 6 fraction digits)."""
    if value.tzinfo is None:
        raise TimestampError("refusing to store a naive datetime")
    # isoformat, not strftime: glibc's %Y does not zero-pad years below 1000.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


# What Rust agents send (chrono, UTC): ``YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z``. Already UTC,
# so the storage form is the same text with the fraction cut or padded to 6 digits.
_AGENT_UTC = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.(\d{1,9}))?Z", re.ASCII
)
_valid_days: set[str] = set()


def normalize(text: str) -> str:
    """Parse a wire timestamp and return it in storage format.

    The agents' own form takes a fast path (string slicing, the calendar date
    checked once per day seen); anything else, including leap seconds and
    offsets, goes through :func:`parse_rfc3339`. Both give identical results.
    """
    if type(text) is str and (m := _AGENT_UTC.fullmatch(text)) is not None:
        day = text[:10]
        if day not in _valid_days:
            try:
                date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return format_db(parse_rfc3339(text))  # raises the usual error
            if len(_valid_days) >= 4096:
                _valid_days.clear()
            _valid_days.add(day)
        return f"{text[:19]}.{(m[4] or '')[:6].ljust(6, '0')}+00:00"
    return format_db(parse_rfc3339(text))


_second_prefix: list[object] = [None, ""]


def format_unix_nanos(nanos: int) -> str:
    """``format_db(from_unix_nanos(nanos))``, without building a datetime per call.

    A batch of JetStream messages shares a handful of publish seconds; the
    ``YYYY-MM-DDTHH:MM:SS`` prefix of the last one is kept.
    """
    seconds, rem = divmod(nanos, 1_000_000_000)
    if _second_prefix[0] != seconds:
        if not 0 <= seconds < 253402300800:  # outside years 1970..9999
            return format_db(from_unix_nanos(nanos))
        _second_prefix[:] = [seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))]
    return f"{_second_prefix[1]}.{rem // 1000:06d}+00:00"


def from_unix_nanos(nanos: int) -> datetime:
    """Exact conversion of integer epoch nanoseconds (JetStream's clock) to UTC."""
    seconds, rem = divmod(nanos, 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rem // 1000)


def utc_now() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def now_db() -> str:
    """The current instant in storage format."""
    return format_db(utc_now())


def format_wire(value: datetime) -> str:
    """An aware datetime as the backend publishes it: RFC 3339 UTC with ``Z``."""
    return format_db(value)[:-6] + "Z"


def epoch_millis(value: datetime) -> int:
    """Whole milliseconds since the Unix epoch (floor), exact for any aware datetime."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
