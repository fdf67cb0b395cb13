"""Query and path parameters: declared once, parsed, validated, and documented.

Each endpoint lists its :class:`Param` objects. The same declarations parse the
request (a bad value raises :class:`ParamError`, answered with 400 naming the
parameter and what was expected) and describe the parameter in
``/api/openapi.json``, so the two cannot drift apart.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request

from projectord.humantime import parse_duration
from projectord.timestamps import format_db, parse_rfc3339

from .regex_filter import RegexError, compile_filter

MAX_TEXT = 1000  # characters in any one text parameter


class ParamError(Exception):
    """A parameter has a value the endpoint cannot use."""

    def __init__(self, name: str, expected: str, got: str | None = None) -> None:
        self.name, self.expected, self.got = name, expected, got
        shown = "" if got is None else f", got {got[:100]!r}"
        super().__init__(f"query parameter '{name}': expected {expected}{shown}")


@dataclass(frozen=True)
class Param:
    """One parameter of an endpoint.

    ``kind`` is one of ``integer``, ``number``, ``string``, ``enum``,
    ``timestamp``, ``duration``, ``regex``, ``list`` (comma-separated) or
    ``cursor``. ``integer`` bounds reject unless ``clamp`` is set; ``enum``
    ``choices`` map every accepted spelling to its canonical value.
    """

    name: str
    kind: str
    help: str
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    clamp: bool = False
    choices: Mapping[str, str] | None = None
    pattern: str | None = None
    where: str = "query"  # or "path"
    required: bool = False

    def expected(self) -> str:
        """What an acceptable value looks like, for error messages and docs."""
        if self.kind == "integer":
            if self.minimum is not None and self.maximum is not None and not self.clamp:
                return f"an integer from {self.minimum} to {self.maximum}"
            return "a non-negative integer" if (self.minimum or 0) >= 0 else "an integer"
        if self.kind == "enum":
            assert self.choices is not None
            return "one of " + ", ".join(repr(c) for c in self.choices)
        return {
            "number": "a number",
            "string": f"text of at most {MAX_TEXT} characters",
            "timestamp": "an RFC 3339 timestamp with an offset, e.g. 2026-01-31T12:00:00Z",
            "duration": "a positive duration such as '5m', '1h' or '1h 30m'",
            "regex": "a valid regular expression (RE2 syntax)",
            "list": "a comma-separated list",
            "cursor": "the next_cursor value of a previous page",
        }.get(self.kind, "a value")

    def parse(self, raw: str) -> Any:
        """The typed value of ``raw``; raises ParamError."""
        if len(raw) > MAX_TEXT:
            raise ParamError(self.name, f"at most {MAX_TEXT} characters", raw)
        if self.pattern is not None and not re.fullmatch(self.pattern, raw):
            raise ParamError(self.name, f"text matching {self.pattern}", raw)
        parse = getattr(self, f"_parse_{self.kind}")
        return parse(raw)

    def _parse_integer(self, raw: str) -> int:
        text = raw.strip()
        if not re.fullmatch(r"[+-]?\d{1,18}", text):
            raise ParamError(self.name, self.expected(), raw)
        value = int(text)
        low = self.minimum if self.minimum is not None else 0
        if self.clamp:
            value = max(value, low)
            return min(value, self.maximum) if self.maximum is not None else value
        if value < low or (self.maximum is not None and value > self.maximum):
            raise ParamError(self.name, self.expected(), raw)
        return value

    def _parse_number(self, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ParamError(self.name, self.expected(), raw) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ParamError(self.name, "a finite number", raw)
        return value

    def _parse_string(self, raw: str) -> str:
        return raw

    def _parse_enum(self, raw: str) -> str:
        assert self.choices is not None
        if raw not in self.choices:
            raise ParamError(self.name, self.expected(), raw)
        return self.choices[raw]

    def _parse_timestamp(self, raw: str) -> datetime:
        try:
            return parse_rfc3339(raw.strip())
        except (ValueError, OverflowError):
            raise ParamError(self.name, self.expected(), raw) from None

    def _parse_duration(self, raw: str) -> timedelta:
        try:
            value = parse_duration(raw)
        except ValueError:
            raise ParamError(self.name, self.expected(), raw) from None
        if value <= timedelta(0):
            raise ParamError(self.name, self.expected(), raw)
        return value

    def _parse_regex(self, raw: str) -> Any:
        try:
            return compile_filter(raw)
        except RegexError as exc:
            raise ParamError(self.name, f"a valid regular expression ({exc})", raw) from None

    def _parse_list(self, raw: str) -> list[str]:
        return [part.strip() for part in raw.split(",") if part.strip()]

    def _parse_cursor(self, raw: str) -> list[Any]:
        return decode_cursor(raw, self.name)


def regex_param(name: str, what: str) -> Param:
    """An RE2 filter parameter searched in ``what`` (blank means no filter)."""
    return Param(name, "regex", f"RE2 pattern searched in {what} (unanchored; blank: no filter).")


def parse_params(request: Request, params: tuple[Param, ...]) -> dict[str, Any]:
    """Every declared parameter by name: parsed value, or its default when absent.

    A query parameter given several times takes its last value; an empty value
    counts as absent (an empty filter box means no filter).
    """
    out: dict[str, Any] = {}
    for p in params:
        if p.where == "path":
            raw = request.path_params.get(p.name)
        else:
            values = request.query_params.getlist(p.name)
            raw = values[-1] if values else None
        if raw is None or (raw.strip() == "" and p.where == "query"):
            if p.required:
                raise ParamError(p.name, f"{p.expected()} (required)")
            out[p.name] = p.default
        else:
            out[p.name] = p.parse(raw)
    return out


def encode_cursor(values: list[Any]) -> str:
    """An opaque page cursor holding the sort key of the last row served."""
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, name: str = "cursor") -> list[Any]:
    """The values :func:`encode_cursor` stored; ParamError when not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ParamError(name, "the next_cursor value of a previous page", text) from None
    if not isinstance(values, list) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in values
    ):
        raise ParamError(name, "the next_cursor value of a previous page", text)
    return values


def db_time(value: datetime) -> str:
    """A parsed timestamp parameter in the database's text format."""
    return format_db(value)
