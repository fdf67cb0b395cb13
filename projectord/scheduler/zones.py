"""Time zones of schedules and freezes: ``local``, ``utc`` or an IANA name.

The original knew only ``local`` (the backend host's zone) and ``utc``, so a
schedule's meaning depended on the server it ran on; an IANA name such as
``Europe/Berlin`` pins it. ``local`` is the zone of the TZ variable when set,
else the host's ``/etc/localtime``, else UTC.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ZoneError(ValueError):
    """A ``tz`` value that names no zone."""


@lru_cache(maxsize=1)
def host_zone() -> tzinfo:
    """The zone ``local`` means on this host."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    localtime = Path("/etc/localtime")
    if localtime.exists():
        with localtime.open("rb") as fh:
            return ZoneInfo.from_file(fh, key="localtime")
    return UTC


@lru_cache(maxsize=256)
def resolve_zone(name: str) -> tzinfo:
    """The zone a ``tz`` field names; ZoneError if it names none."""
    if name == "local":
        return host_zone()
    if name.lower() == "utc":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ZoneError(f"expected 'local', 'utc' or an IANA zone name, got {name!r}") from None


def wall_to_instant(wall: datetime, zone: tzinfo) -> datetime | None:
    """The UTC instant of a naive wall-clock time in ``zone``, by the DST rules.

    A wall time that does not exist (skipped by a spring-forward) gives None;
    one that occurs twice (fall-back) gives the earlier instant.
    """
    local = wall.replace(tzinfo=zone, fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return instant


def local_midnight(day: datetime | str, zone: tzinfo) -> datetime:
    """Midnight starting ``day`` (``YYYY-MM-DD``) in ``zone``, as a UTC instant.

    Where midnight itself is skipped by DST, the day starts at the first
    existing minute after it.
    """
    wall = datetime.fromisoformat(day) if isinstance(day, str) else day
    wall = wall.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    for minutes in range(0, 24 * 60):
        instant = wall_to_instant(wall + timedelta(minutes=minutes), zone)
        if instant is not None:
            return instant
    raise ZoneError(f"no existing time on {wall.date()} in {zone}")  # pragma: no cover
