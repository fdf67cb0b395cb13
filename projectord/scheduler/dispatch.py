"""Dispatch: what a fire sends and records, in the original's order (scheduler.md 6).

1. script digest for a ``script_object`` job (object store ``scripts``);
2. ``script_current[job_id] = version`` *before* publishing, or agents gating on
   the version would skip the first run after a version bump (warning only);
3. one Command per subject, each with its own ``request_id``, one ``exec_id``
   per fire; rollout waves with a delay are persisted and sent later;
4. the ``executions`` row, with ``schedule_id``;
5. the audit event (best effort).

A failure in 1 or 3 fails the dispatch: nothing is recorded as fired, no
marks are written, and the PCs stay armed for the next tick.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from nats.js import JetStreamContext
from sqlalchemy import Connection, insert

from ..database import Writer
from ..schema import pending_waves
from ..timestamps import format_db
from .commands import Fire, audit_body, command_body, subjects_for
from .manifest import Manifest
from .records import insert_execution
from .schedule import Schedule, Target
from .signing import Signer

log = structlog.get_logger("projectord.scheduler")

SCRIPTS_STORE = "scripts"
SCRIPT_CURRENT = "script_current"
PUBLISH_TIMEOUT_S = 60


class DispatchError(Exception):
    """The fire could not be sent; the message says which step failed."""


@dataclass(frozen=True)
class Dispatched:
    exec_id: str
    subjects: list[str]
    target_count: int


def digest_hex(digest: str) -> str:
    """An object store digest (``SHA-256=<base64url>``) as lowercase hex."""
    algo, _, encoded = digest.partition("=")
    if algo.upper() != "SHA-256" or not encoded:
        raise DispatchError(f"script object digest {digest!r} is not SHA-256")
    raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    return raw.hex()


def audit_subject(job_id: str) -> str:
    """``audit.scheduler.exec.<job>``, or without the job when it is no subject token."""
    if job_id and not any(ch in job_id for ch in ". *>\t\r\n"):
        return f"audit.scheduler.exec.{job_id}"
    return "audit.scheduler.exec"


def _queue_waves(conn: Connection, rows: list[dict[str, Any]]) -> None:
    conn.execute(insert(pending_waves), rows)


class Dispatcher:
    def __init__(self, js: JetStreamContext, writer: Writer, signer: Signer | None = None) -> None:
        self.js = js
        self.writer = writer
        self.signer = signer

    async def _script_digest(self, manifest: Manifest) -> str | None:
        if not manifest.script_object:
            return None
        try:
            store = await self.js.object_store(SCRIPTS_STORE)
            info = await store.get_info(manifest.script_object)
        except Exception as exc:
            raise DispatchError(
                f"script object {manifest.script_object!r}: {str(exc) or type(exc).__name__}"
            ) from None
        return digest_hex(info.digest)

    async def _publish_all(self, messages: list[tuple[str, bytes]]) -> None:
        """Publish every message and wait for every ack; DispatchError on the first failure.

        Pipelined: a per-PC fire over a large fleet is one Command per PC.
        """
        futures: list[tuple[str, asyncio.Future[Any]]] = []
        try:
            for subject, body in messages:
                headers = self.signer.headers(body) if self.signer else None
                future = await self.js.publish_async(subject, body, wait_stall=30, headers=headers)
                futures.append((subject, future))
            acks = await asyncio.wait_for(
                asyncio.gather(*(f for _, f in futures), return_exceptions=True), PUBLISH_TIMEOUT_S
            )
        except Exception as exc:
            raise DispatchError(f"publish: {str(exc) or type(exc).__name__}") from None
        for (subject, _), ack in zip(futures, acks, strict=True):
            if isinstance(ack, BaseException):
                raise DispatchError(f"publish to {subject}: {str(ack) or type(ack).__name__}")

    async def dispatch(
        self,
        schedule: Schedule,
        manifest: Manifest,
        target: Target,
        target_count: int,
        now: datetime,
        deadline_at: datetime | None,
        with_waves: bool,
    ) -> Dispatched:
        """Send one fire; DispatchError if it could not be sent."""
        waves = schedule.waves if with_waves else ()
        if not waves and not target.specified:
            raise DispatchError("target: nothing specified (all, groups or pcs)")
        fire = Fire(str(uuid.uuid4()), deadline_at, await self._script_digest(manifest))
        try:
            kv = await self.js.key_value(SCRIPT_CURRENT)
            await kv.put(manifest.id, manifest.version.encode())
        except Exception as exc:
            log.warning("script_current_put_failed", job_id=manifest.id, error=str(exc))

        now_msgs: list[tuple[str, bytes]] = []
        later: list[dict[str, Any]] = []
        if waves:
            for wave in waves:
                subject = f"commands.group.{wave.group}"
                body = command_body(manifest, schedule, fire, str(uuid.uuid4()))
                if wave.delay > timedelta(0):
                    later.append(
                        {
                            "exec_id": fire.exec_id,
                            "schedule_id": schedule.id,
                            "subject": subject,
                            "body": body,
                            "due_at": format_db(now + wave.delay),
                        }
                    )
                else:
                    now_msgs.append((subject, body))
            subjects = [f"commands.group.{wave.group}" for wave in waves]
        else:
            subjects = subjects_for(target)
            now_msgs = [
                (subject, command_body(manifest, schedule, fire, str(uuid.uuid4())))
                for subject in subjects
            ]
        await self._publish_all(now_msgs)
        if later:
            await self.writer.transaction(_queue_waves, later)
        count = max(1, target_count)
        await self.writer.transaction(
            insert_execution, fire.exec_id, manifest.id, manifest.version, count, now, schedule.id
        )
        try:
            await self.js.publish(
                audit_subject(manifest.id),
                audit_body(manifest, fire, count, subjects, bool(waves), now),
            )
        except Exception as exc:
            log.warning("audit_publish_failed", exec_id=fire.exec_id, error=str(exc))
        return Dispatched(fire.exec_id, subjects, count)
