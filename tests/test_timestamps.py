"""RFC 3339 parsing and the one storage format (wire-contract 1.2, DESIGN decision 6)."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from projectord.timestamps import (
    TimestampError,
    format_db,
    format_unix_nanos,
    from_unix_nanos,
    normalize,
    parse_rfc3339,
)

STORAGE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00")
NOON = datetime(2026, 5, 20, 12, 0, 0, tzinfo=UTC)


# --- accepted forms ----------------------------------------------------------------------


@pytest.mark.parametrize("digits", range(10))
def test_fraction_of_0_to_9_digits_truncates_to_microseconds(digits):
    fraction = "987654321"[:digits]
    text = "2026-05-20T12:00:00" + (f".{fraction}" if digits else "") + "Z"
    expected_micros = int(fraction.ljust(6, "0")[:6])
    assert parse_rfc3339(text) == NOON.replace(microsecond=expected_micros)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("2026-05-20T12:00:00.9999999Z", 999_999),  # 7 digits: not rounded up to :01
        ("2026-05-20T12:00:00.999999999Z", 999_999),
        ("2026-05-20T12:00:00.123456999Z", 123_456),
        ("2026-05-20T12:00:00.0000009Z", 0),
        ("2026-05-20T12:00:00.5Z", 500_000),
        ("2026-05-20T12:00:00.000001Z", 1),
    ],
)
def test_fraction_is_truncated_never_rounded(text, micros):
    value = parse_rfc3339(text)
    assert value == NOON.replace(microsecond=micros)
    assert value.second == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-05-20T12:00:00Z", NOON),
        ("2026-05-20T12:00:00z", NOON),
        ("2026-05-20t12:00:00Z", NOON),
        ("2026-05-20t12:00:00z", NOON),
        ("2026-05-20T12:00:00+00:00", NOON),
        ("2026-05-20T12:00:00-00:00", NOON),
        ("2026-05-20T21:00:00+09:00", NOON),
        ("2026-05-20T06:30:00-05:30", NOON),
        ("2026-05-20T21:00:00.123456789+09:00", NOON.replace(microsecond=123_456)),
        ("2026-05-21T11:59:00+23:59", NOON),
        ("2026-05-19T12:01:00-23:59", NOON),
        # the offset moves the instant across a day and a year boundary
        ("2026-01-01T02:00:00+09:00", datetime(2025, 12, 31, 17, 0, tzinfo=UTC)),
        ("2025-12-31T20:00:00-05:00", datetime(2026, 1, 1, 1, 0, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),  # leap day
    ],
)
def test_offsets_are_converted_to_utc(text, expected):
    value = parse_rfc3339(text)
    assert value == expected
    assert value.utcoffset() == timedelta(0)
    assert value.tzinfo is UTC
    # the wall clock is UTC, not just an equal instant in another zone
    assert (value.year, value.month, value.day, value.hour, value.minute) == (
        expected.year,
        expected.month,
        expected.day,
        expected.hour,
        expected.minute,
    )


def test_leap_second_folds_onto_the_last_microsecond():
    assert parse_rfc3339("2016-12-31T23:59:60Z") == datetime(
        2016, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC
    )


# --- rejected forms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2026-05-20T12:00:00",  # no offset
        "2026-05-20T12:00:00.123456789",  # no offset, with fraction
        "2026-05-20",  # date only
        "12:00:00Z",  # time only
        "",
        "garbage",
        "2026-05-20T12:00Z",  # no seconds
        "2026-05-20T12:00:00.Z",  # dot without digits
        "2026-05-20T12:00:00.1234567890Z",  # 10 fraction digits
        "2026-05-20T12:00:00+0900",  # offset without colon
        "2026-05-20T12:00:00+09",
        "2026-05-20T12:00:00 Z",
        "2026-5-20T12:00:00Z",
        "26-05-20T12:00:00Z",
        " 2026-05-20T12:00:00Z",
        "2026-05-20T12:00:00Z\n",
        "2026-05-20T12:00:00ZZ",
        "2026-05-20T12:00:00UTC",
        "2026-05-20X12:00:00Z",
        # invalid calendar dates and clock times
        "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-05-00T00:00:00Z",
        "2026-05-20T24:00:00Z",
        "2026-05-20T12:60:00Z",
        "2026-05-20T12:00:61Z",
        # offsets out of range
        "2026-05-20T12:00:00+24:00",
        "2026-05-20T12:00:00-25:00",
        "2026-05-20T12:00:00+99:00",
        "2026-05-20T12:00:00+05:60",
    ],
)
def test_rejected_strings(text):
    with pytest.raises(TimestampError):
        parse_rfc3339(text)


def test_timestamp_error_is_a_value_error():
    assert issubclass(TimestampError, ValueError)


@pytest.mark.parametrize(
    "value",
    [None, 1_779_278_400, 1.5, b"2026-05-20T12:00:00Z", NOON, ["2026-05-20T12:00:00Z"]],
)
def test_non_strings_are_rejected(value):
    with pytest.raises(TimestampError, match="string"):
        parse_rfc3339(value)


@pytest.mark.parametrize(
    "text",
    [
        "\uff12\uff10\uff12\uff16-05-20T12:00:00Z",  # fullwidth digits
        "2026-05-20T\u0661\u0662:00:00Z",  # Arabic-Indic digits
    ],
)
def test_non_ascii_digits_are_rejected(text):
    """RFC 3339's DIGIT is ASCII 0-9; other Unicode digits are not a timestamp."""
    with pytest.raises(TimestampError):
        parse_rfc3339(text)


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+01:00",  # before datetime.min in UTC
        "9999-12-31T23:59:59-01:00",  # after datetime.max in UTC
    ],
)
def test_instants_outside_the_representable_range_are_timestamp_errors(text):
    """Every unusable input is a TimestampError, so the reject names the field."""
    with pytest.raises(TimestampError):
        parse_rfc3339(text)


# --- storage format ----------------------------------------------------------------------


def test_format_db_is_fixed_width_utc():
    assert format_db(NOON) == "2026-05-20T12:00:00.000000+00:00"
    assert format_db(NOON.replace(microsecond=7)) == "2026-05-20T12:00:00.000007+00:00"
    tokyo = timezone(timedelta(hours=9))
    assert format_db(datetime(2026, 5, 20, 21, 0, 0, 5, tzinfo=tokyo)) == (
        "2026-05-20T12:00:00.000005+00:00"
    )
    assert normalize("2026-05-20T21:00:00.123456789+09:00") == "2026-05-20T12:00:00.123456+00:00"
    assert normalize("2026-05-20t12:00:00z") == "2026-05-20T12:00:00.000000+00:00"


def test_format_db_refuses_naive_datetimes():
    with pytest.raises(TimestampError):
        format_db(datetime(2026, 5, 20, 12, 0, 0))


def test_format_db_pads_years_below_1000():
    value = parse_rfc3339("0999-01-01T00:00:00Z")
    assert format_db(value) == "0999-01-01T00:00:00.000000+00:00"
    assert format_db(value) < format_db(parse_rfc3339("1000-01-01T00:00:00Z"))


def _render(instant: datetime, offset_minutes: int, digits: int, extra_nanos: int, rng) -> str:
    """``instant`` as an RFC 3339 string in the given offset with ``digits`` fraction digits."""
    tz = timezone(timedelta(minutes=offset_minutes))
    local = instant.astimezone(tz)
    nanos = f"{local.microsecond:06d}{extra_nanos:03d}"
    fraction = f".{nanos[:digits]}" if digits else ""
    if offset_minutes == 0 and rng.random() < 0.5:
        zone = rng.choice("Zz")
    else:
        sign = "-" if offset_minutes < 0 else "+"
        zone = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    sep = rng.choice("Tt")
    return local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + zone


def test_string_order_is_time_order_across_offsets():
    rng = random.Random(20260520)
    lo = datetime(1000, 1, 2, tzinfo=UTC).timestamp()
    hi = datetime(9999, 12, 30, tzinfo=UTC).timestamp()
    samples: list[tuple[datetime, str]] = []
    for i in range(3000):
        if i % 3 == 0 and samples:
            # near-ties: the same instant or a microsecond apart, in another offset
            base = samples[rng.randrange(len(samples))][0] + timedelta(
                microseconds=rng.choice((-1, 0, 1))
            )
        elif i % 3 == 1:
            base = datetime.fromtimestamp(
                rng.randrange(1_700_000_000, 1_900_000_000), UTC
            ) + timedelta(microseconds=rng.randrange(1_000_000))
        else:
            base = datetime.fromtimestamp(int(rng.uniform(lo, hi)), UTC) + timedelta(
                microseconds=rng.randrange(1_000_000)
            )
        offset = rng.choice((0, rng.randrange(-23 * 60 - 59, 23 * 60 + 60)))
        digits = rng.randrange(10)
        text = _render(base, offset, digits, rng.randrange(1000), rng)
        keep = 10 ** (6 - min(digits, 6))
        expected = base.replace(microsecond=base.microsecond // keep * keep)

        parsed = parse_rfc3339(text)
        assert parsed == expected, text
        stored = format_db(parsed)
        assert STORAGE.fullmatch(stored), (text, stored)
        assert stored == expected.isoformat(timespec="microseconds"), text
        samples.append((expected, stored))

    by_time = sorted(samples, key=lambda s: s[0])
    by_text = sorted(samples, key=lambda s: s[1])
    assert [s[0] for s in by_text] == [s[0] for s in by_time]
    for _ in range(5000):
        (a, sa), (b, sb) = rng.sample(samples, 2)
        assert (a < b) == (sa < sb) and (a == b) == (sa == sb), (a, sa, b, sb)


# --- JetStream clock ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nanos", "expected"),
    [
        (0, "1970-01-01T00:00:00.000000+00:00"),
        (1, "1970-01-01T00:00:00.000000+00:00"),
        (999, "1970-01-01T00:00:00.000000+00:00"),
        (1_000, "1970-01-01T00:00:00.000001+00:00"),
        (1_779_278_400_000_000_000, "2026-05-20T12:00:00.000000+00:00"),
        (1_779_278_400_123_456_789, "2026-05-20T12:00:00.123456+00:00"),
        (1_779_278_400_999_999_999, "2026-05-20T12:00:00.999999+00:00"),
        (-1, "1969-12-31T23:59:59.999999+00:00"),
        (-1_000, "1969-12-31T23:59:59.999999+00:00"),
        (-1_001, "1969-12-31T23:59:59.999998+00:00"),
    ],
)
def test_from_unix_nanos_is_exact(nanos, expected):
    value = from_unix_nanos(nanos)
    assert value.tzinfo is UTC
    assert format_db(value) == expected


def test_from_unix_nanos_matches_integer_arithmetic():
    rng = random.Random(4222)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for _ in range(2000):
        nanos = rng.randrange(0, 4_102_444_800 * 10**9)  # up to 2100
        assert from_unix_nanos(nanos) == epoch + timedelta(microseconds=nanos // 1000), nanos


# --- fast paths agree with the general parser ---------------------------------------------


def _agent_form(rng: random.Random) -> str:
    """A ``...Z`` timestamp as agents send it, sometimes with an impossible field."""
    year = rng.choice([0, 1, 1970, 1999, 2024, 2026, 9999])
    month = rng.choice([1, 2, 12, 13, 0])
    day = rng.choice([1, 28, 29, 30, 31, 32])
    hour, minute, second = rng.choice([0, 23, 24]), rng.choice([0, 59, 60]), rng.choice([0, 59, 60])
    fraction = "".join(rng.choice("0123456789") for _ in range(rng.randrange(0, 10)))
    frac = f".{fraction}" if fraction else ""
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{frac}Z"


def test_normalize_fast_path_equals_the_general_parser():
    rng = random.Random(7)
    accepted = rejected = 0
    for _ in range(5000):
        text = _agent_form(rng)
        try:
            expected = format_db(parse_rfc3339(text))
        except TimestampError:
            with pytest.raises(TimestampError):
                normalize(text)
            rejected += 1
            continue
        assert normalize(text) == expected, text
        accepted += 1
    assert accepted > 500 and rejected > 500


def test_format_unix_nanos_equals_the_datetime_conversion():
    rng = random.Random(3)
    samples = [0, 1, 999, 1_000_000_000 - 1, 253402300799_999_999_999, -1, -1_000_000_001]
    base = 1_779_278_400_000_000_000
    samples += [base + rng.randrange(0, 3_000_000_000) for _ in range(2000)]  # shared seconds
    samples += [rng.randrange(0, 253402300800_000_000_000) for _ in range(2000)]
    for nanos in samples:
        assert format_unix_nanos(nanos) == format_db(from_unix_nanos(nanos)), nanos
