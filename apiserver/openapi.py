"""``/api/openapi.json``: generated from the endpoints' own declarations."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from . import __version__
from .endpoint import Endpoint
from .openapi_types import obj, string
from .params import Param

_ERROR = {"$ref": "#/components/schemas/Error"}
_PARAM_ERROR = {"$ref": "#/components/schemas/ParamError"}


def param_schema(p: Param) -> dict[str, Any]:
    """The JSON schema of one parameter's raw text."""
    if p.kind == "integer":
        schema: dict[str, Any] = {"type": "integer"}
        if not p.clamp:  # clamped values accept anything and are pulled into range
            schema["minimum"] = p.minimum if p.minimum is not None else 0
            if p.maximum is not None:
                schema["maximum"] = p.maximum
        return schema
    if p.kind == "number":
        return {"type": "number"}
    if p.kind == "enum":
        assert p.choices is not None
        return {"type": "string", "enum": list(p.choices)}
    if p.kind == "timestamp":
        return {"type": "string", "format": "date-time"}
    schema = {"type": "string"}
    if p.pattern is not None:
        schema["pattern"] = f"^{p.pattern}$"
    return schema


def _parameter(p: Param) -> dict[str, Any]:
    description = p.help
    if p.default is not None and not callable(p.default):
        description += f" Default: {p.default}."
    return {
        "name": p.name,
        "in": p.where,
        "required": p.where == "path" or p.required,
        "description": description,
        "schema": param_schema(p),
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(e: Endpoint) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": _json(dict(e.response), "OK")}
    if e.headers:
        responses["200"]["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in e.headers.items()
        }
    if e.params or e.body:
        responses["400"] = _json(_PARAM_ERROR, "A parameter has a bad value.")
    if not e.public:
        responses["401"] = _json(_ERROR, "Not logged in, or an unknown service token.")
    for status, text in e.statuses.items():
        responses[str(status)] = _json(_ERROR if status != 503 else {}, text)
    if e.uses_db and "503" not in responses:
        responses["503"] = _json(_ERROR, "The database cannot be read (yet).")
    op: dict[str, Any] = {
        "summary": e.summary,
        "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{e.method} {e.path}").strip("_").lower(),
        "parameters": [_parameter(p) for p in e.params],
        "responses": responses,
    }
    if not e.public:
        op["security"] = [{"session": []}, {"token": []}]
    if e.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": e.body}}}
    return op


def openapi_document(endpoints: Iterable[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route."""
    paths: dict[str, Any] = {}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kanade backend read API",
            "version": __version__,
            "description": "Read-only API over the projection database.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                "Error": obj(error=string()),
                "ParamError": obj(
                    optional=("parameter", "expected"),
                    error=string(),
                    parameter=string(),
                    expected=string(),
                ),
            },
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "kanade_session"},
                "token": {"type": "http", "scheme": "bearer"},
            },
        },
    }
