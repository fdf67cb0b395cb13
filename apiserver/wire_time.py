"""Timestamps on the way out: the database's ``+00:00`` text as RFC 3339 with ``Z``."""

from __future__ import annotations

from datetime import datetime

from projectord.timestamps import format_db


def api_time(stored: str | None) -> str | None:
    """``2026-01-31T12:00:00.000000+00:00`` as ``2026-01-31T12:00:00.000000Z``.

    Stored text is always UTC in one format (DESIGN decision 6), so this is a
    suffix swap; anything else (a legacy row) is passed through unchanged.
    """
    if stored is None:
        return None
    if stored.endswith("+00:00"):
        return stored[:-6] + "Z"
    return stored


def api_time_of(value: datetime) -> str:
    """A datetime in the same output format."""
    return format_db(value)[:-6] + "Z"
