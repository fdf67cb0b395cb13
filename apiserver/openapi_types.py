"""Small builders for the JSON schemas of responses (OpenAPI 3.1)."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _maybe_null(schema: Schema, nullable: bool) -> Schema:
    if nullable:
        schema = {**schema, "type": [schema["type"], "null"]}
    return schema


def string(nullable: bool = False, enum: list[str] | None = None) -> Schema:
    schema: Schema = {"type": "string"}
    if enum is not None:
        schema["enum"] = enum + ([None] if nullable else [])
    return _maybe_null(schema, nullable)


def timestamp(nullable: bool = False) -> Schema:
    """RFC 3339 UTC text."""
    return _maybe_null({"type": "string", "format": "date-time"}, nullable)


def integer(nullable: bool = False) -> Schema:
    return _maybe_null({"type": "integer"}, nullable)


def number(nullable: bool = False) -> Schema:
    return _maybe_null({"type": "number"}, nullable)


def boolean() -> Schema:
    return {"type": "boolean"}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def any_json() -> Schema:
    """Any JSON value (a payload as the agent or operator sent it)."""
    return {}


def obj(optional: tuple[str, ...] = (), nullable: bool = False, **props: Schema) -> Schema:
    """An object with ``props``; every key is required except those in ``optional``."""
    schema: Schema = {
        "type": "object",
        "properties": props,
        "required": [k for k in props if k not in optional],
    }
    return _maybe_null(schema, nullable)


def mapping(values: Schema) -> Schema:
    """An object with arbitrary keys, each holding ``values``."""
    return {"type": "object", "additionalProperties": values}
