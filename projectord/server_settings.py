"""ServerSettings from the ``server_settings`` KV bucket (wire-contract 6.14).

Written by operators and read fresh when needed: ``agent_prune_days`` by the
housekeeping prune, ``controller_group`` by the scheduler's controller tier.
Which key the original stores the value under is unverified, so every key in
the bucket is accepted: with several, the most recently written wins.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError

log = structlog.get_logger("projectord.server_settings")

BUCKET = "server_settings"
MAX_DAYS = 36500


class SettingsError(ValueError):
    """The ServerSettings value is unusable; the message names the field."""


def _body(raw: bytes | None) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise SettingsError(f"server_settings is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise SettingsError("server_settings must be a JSON object")
    return body


def prune_days(raw: bytes | None) -> int:
    """``agent_prune_days`` from a ServerSettings value; absent, null or 0 means off."""
    days: Any = _body(raw).get("agent_prune_days")
    if days is None:
        return 0
    if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_DAYS:
        raise SettingsError(
            f"field 'agent_prune_days': expected an integer from 0 to {MAX_DAYS}, got {days!r}"
        )
    return days


def controller_group(raw: bytes | None) -> str | None:
    """``controller_group``: the group whose alive members run controller-tier jobs."""
    group: Any = _body(raw).get("controller_group")
    if group is None or group == "":
        return None
    if not isinstance(group, str):
        raise SettingsError(f"field 'controller_group': expected a group name, got {group!r}")
    return group


async def read_settings_value(js: JetStreamContext) -> bytes | None:
    """The newest value in the bucket, or None when it is empty or missing.

    Broker errors propagate: the caller skips the prune for this tick.
    """
    try:
        kv = await js.key_value(BUCKET)
        keys = await kv.keys()
    except (BucketNotFoundError, NoKeysError):
        return None
    newest = None
    for key in keys:
        try:
            entry = await kv.get(key)
        except KeyNotFoundError:  # deleted between the listing and the read
            continue
        if newest is None or entry.revision > newest.revision:
            newest = entry
    if len(keys) > 1 and newest is not None:
        log.info("server_settings_keys", keys=sorted(keys), using=newest.key)
    return newest.value if newest is not None else None
