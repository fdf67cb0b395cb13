"""The streams, KV buckets and object stores the backend needs, and their bootstrap.

Configs follow wire-contract.md sections 2-4. Bootstrap is create-or-update: a
resource that exists (ours from a previous start, or the original backend's) is
updated only in the fields the contract fixes, and left alone when it already
matches, so running it on every start is free.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

log = structlog.get_logger("projectord.bootstrap")

MIB = 1024**2
GIB = 1024**3
DAY = 86400.0


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_days: float
    max_bytes: int
    max_msgs_per_subject: int = -1

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=1,
            discard=DiscardPolicy.OLD,
            max_msgs=-1,
            max_age=self.max_age_days * DAY,
            max_bytes=self.max_bytes,
            max_msgs_per_subject=self.max_msgs_per_subject,
        )


STREAMS = (
    StreamSpec("INVENTORY", ("inventory.>",), 90, 1 * GIB),
    StreamSpec("RESULTS", ("results.>",), 30, 2 * GIB),
    StreamSpec("EXEC", ("commands.>",), 7, 64 * MIB, max_msgs_per_subject=1),
    StreamSpec("EVENTS", ("events.>",), 7, 256 * MIB),
    StreamSpec("AUDIT", ("audit.>",), 90, 512 * MIB),
    StreamSpec("OBS_EVENTS", ("obs.>",), 90, 512 * MIB),
    StreamSpec("NOTIFICATIONS", ("notifications.>",), 90, 512 * MIB),
)

# (bucket, history). scheduler_dispatch is created by its user on first use.
KV_BUCKETS = (
    ("schedules", 5),
    ("jobs", 5),
    ("fleet_config", 1),
    ("server_settings", 1),
    ("agent_groups", 1),
    ("agent_groups_derived", 1),
    ("script_current", 5),
    ("script_status", 5),
    ("schedules_yaml", 5),
    ("jobs_yaml", 5),
)

# (bucket, max_age seconds or None, max_bytes or None)
OBJECT_STORES = (
    ("result_output", 30 * DAY, 1 * GIB),
    ("scripts", None, None),
    ("collections", 30 * DAY, 5 * GIB),
)


def _drift(current: StreamConfig, wanted: dict[str, object]) -> dict[str, object]:
    """The fields of ``wanted`` that differ from the existing stream config."""
    out = {}
    for field, value in wanted.items():
        have = getattr(current, field)
        if field == "max_age":
            have = have or 0.0
            value = value or 0.0
            if abs(float(have) - float(value)) < 1e-3:
                continue
        elif field == "subjects":
            if sorted(have or []) == sorted(value):
                continue
        elif have == value:
            continue
        out[field] = value
    return out


async def _ensure_stream(js: JetStreamContext, spec: StreamSpec) -> str:
    wanted = spec.config()
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(wanted)
        return "created"
    if info.config.storage != wanted.storage:
        # JetStream cannot change storage in place; moving it needs an operator.
        log.warning(
            "stream_storage_differs",
            stream=spec.name,
            have=str(info.config.storage),
            want=str(wanted.storage),
        )
    fixed = {
        "subjects": wanted.subjects,
        "max_age": wanted.max_age,
        "max_bytes": wanted.max_bytes,
        "max_msgs": wanted.max_msgs,
        "max_msgs_per_subject": wanted.max_msgs_per_subject,
        "discard": wanted.discard,
    }
    drift = _drift(info.config, fixed)
    if not drift:
        return "unchanged"
    await js.update_stream(info.config.evolve(**drift))
    return "updated: " + ", ".join(sorted(drift))


async def _ensure_limits(
    js: JetStreamContext, stream: str, wanted: dict[str, object]
) -> str | None:
    """Bring an existing KV/object stream's fixed limits in line; None if absent."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return None
    drift = _drift(info.config, wanted)
    if not drift:
        return "unchanged"
    await js.update_stream(info.config.evolve(**drift))
    return "updated: " + ", ".join(sorted(drift))


async def ensure_resources(js: JetStreamContext) -> dict[str, str]:
    """Create or update every stream, KV bucket and object store; return what happened."""
    outcome: dict[str, str] = {}
    for spec in STREAMS:
        outcome[spec.name] = await _ensure_stream(js, spec)
    for bucket, history in KV_BUCKETS:
        # No KV bucket we create has a TTL: an old one would expire manifests.
        wanted: dict[str, object] = {"max_msgs_per_subject": history, "max_age": 0.0}
        state = await _ensure_limits(js, f"KV_{bucket}", wanted)
        if state is None:
            await js.create_key_value(KeyValueConfig(bucket=bucket, history=history))
            state = "created"
        outcome[f"KV_{bucket}"] = state
    for bucket, max_age, max_bytes in OBJECT_STORES:
        wanted = {}
        if max_age is not None:
            wanted["max_age"] = max_age
        if max_bytes is not None:
            wanted["max_bytes"] = max_bytes
        state = await _ensure_limits(js, f"OBJ_{bucket}", wanted)
        if state is None:
            await js.create_object_store(
                bucket, config=ObjectStoreConfig(ttl=max_age, max_bytes=max_bytes)
            )
            state = "created"
        outcome[f"OBJ_{bucket}"] = state
    for name, state in outcome.items():
        if state != "unchanged":
            log.info("broker_resource", resource=name, state=state)
    return outcome
