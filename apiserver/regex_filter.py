"""Regex filters (Activity, Audit, Agents) with RE2: linear time, never catastrophic.

The original uses Rust's ``regex`` crate, which guarantees linear-time matching;
Python's ``re`` backtracks, so a pattern like ``(a+)+b`` on a long stdout could
pin a worker for minutes. RE2 has the same guarantee and nearly the same syntax
(no look-around, no back-references, as in Rust). Its compiled program size is
capped, so a pattern that expands enormously (``a{1000}{1000}``) is rejected
instead of run.
"""

from __future__ import annotations

from typing import Any

import re2

MAX_PATTERN = 1000  # characters
_PROGRAM_MEMORY = 8 << 20  # bytes RE2 may use for one compiled pattern


class RegexError(ValueError):
    """The pattern is not valid RE2 or is too large to run."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # errors are returned to the caller, not printed
    options.max_mem = _PROGRAM_MEMORY
    return options


_OPTIONS = _options()


def compile_filter(pattern: str) -> Any | None:
    """A compiled unanchored pattern, or None for a blank one (no filter)."""
    if not pattern.strip():
        return None
    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"at most {MAX_PATTERN} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexError(str(reason)) from None


def matches(pattern: Any | None, value: str | None) -> bool:
    """Unanchored search; NULL matches as the empty string; no pattern matches all."""
    return pattern is None or pattern.search(value or "") is not None


CONTEXT = 80  # characters of context either side of a match
MATCHED_MAX = 240  # characters of the match itself


def excerpt(pattern: Any, text: str) -> dict[str, Any] | None:
    """Where ``pattern`` first matches ``text``, with context; None without a match."""
    m = pattern.search(text)
    if m is None:
        return None
    start, end = m.span()
    before_start = max(0, start - CONTEXT)
    shown_end = min(end, start + MATCHED_MAX)
    after_end = min(len(text), end + CONTEXT)
    return {
        "before": text[before_start:start],
        "matched": text[start:shown_end],
        "after": text[end:after_end],
        "clipped_start": before_start > 0,
        "clipped_end": after_end < len(text),
    }
