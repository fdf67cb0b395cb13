"""Start-up reconciliation of each durable consumer with the database's checkpoint.

A durable's position lives on the broker, the projection in the database. When
the two disagree the database wins, because it is what the dashboard shows:

* durable ahead of the checkpoint (wiped DB, restored older backup, new disk,
  or a previous process killed after fetching a batch it never committed):
  the durable is recreated to deliver from checkpoint + 1, so exactly the
  missing tail is re-derived. This generalises the original's #389 guard, which
  only caught an *empty* table and missed a restored backup.
* stream recreated (its creation time changed, or its last sequence is below
  the checkpoint): old sequence numbers mean nothing; the checkpoint is reset.
* checkpoint + 1 already aged out of the stream: the gap is logged with its size
  and recorded in ``projector_gaps`` so the dashboard can show it.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from .checkpoints import Checkpoint, read_checkpoint, record_gap, reset_checkpoint
from .database import Writer
from .projectors.contract import JetStreamProjector
from .timestamps import format_db

log = structlog.get_logger("projectord.positions")


@dataclass(frozen=True)
class StreamState:
    created: str | None
    first_seq: int
    last_seq: int


@dataclass(frozen=True)
class ConsumerState:
    ack_floor: int
    filter_subject: str | None
    explicit_ack: bool
    # Stream sequence of the last message handed out (acked or not).
    delivered: int = 0
    # Delivery (consumer) sequence of that message; it grows by one per delivery.
    delivered_cseq: int = 0


@dataclass(frozen=True)
class PositionPlan:
    """What to do with one projector's durable before it starts consuming."""

    action: str  # "keep", "create" or "recreate"
    start_seq: int  # first stream sequence the projector still needs
    reset_checkpoint: bool
    gap: tuple[int, int] | None
    reason: str


def plan_position(
    checkpoint: Checkpoint,
    stream: StreamState,
    consumer: ConsumerState | None,
    filter_subject: str | None,
) -> PositionPlan:
    """Decide how to (re)position a durable. Pure; see the module docstring."""
    last_seq = checkpoint.last_seq
    reset = False
    reason = ""
    if last_seq and (
        (
            checkpoint.stream_created
            and stream.created
            and checkpoint.stream_created != stream.created
        )
        or last_seq > stream.last_seq
    ):
        reset, last_seq = True, 0
        reason = "stream was recreated; replaying it from its start"
    start = last_seq + 1
    gap = None
    if stream.first_seq > start and stream.last_seq > 0:
        gap = (start, stream.first_seq - 1)

    if consumer is None:
        return PositionPlan("create", start, reset, gap, reason or "no durable yet")
    if (consumer.filter_subject or None) != filter_subject or not consumer.explicit_ack:
        return PositionPlan(
            "recreate", start, reset, gap, reason or "durable config differs from ours"
        )
    if consumer.ack_floor > last_seq:
        why = reason or (
            f"durable acked up to {consumer.ack_floor}, database holds up to {last_seq}"
        )
        return PositionPlan("recreate", start, reset, gap, why)
    if consumer.delivered > last_seq:
        # Handed to a previous process (killed mid-batch) but never committed.
        # JetStream would redeliver those only after ack_wait, behind newer
        # messages, and the checkpoint would then skip them as already applied.
        why = reason or (
            f"durable delivered up to {consumer.delivered}, database holds up to {last_seq}"
        )
        return PositionPlan("recreate", start, reset, gap, why)
    return PositionPlan("keep", start, reset, gap, reason or "durable not ahead of database")


def consumer_config(
    projector: JetStreamProjector, start_seq: int, max_ack_pending: int
) -> ConsumerConfig:
    """The durable pull consumer of ``projector``, delivering from ``start_seq``."""
    by_seq = start_seq > 1
    return ConsumerConfig(
        name=projector.durable,
        durable_name=projector.durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if by_seq else DeliverPolicy.ALL,
        opt_start_seq=start_seq if by_seq else None,
        filter_subject=projector.filter_subject,
        max_ack_pending=max_ack_pending,
        ack_wait=60,
        max_waiting=16,
    )


async def _stream_state(js: JetStreamContext, stream: str) -> StreamState:
    info = await js.stream_info(stream)
    created = format_db(info.created) if info.created else None
    return StreamState(created, info.state.first_seq, info.state.last_seq)


async def _consumer_state(js: JetStreamContext, stream: str, durable: str) -> ConsumerState | None:
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        return None
    return ConsumerState(
        ack_floor=info.ack_floor.stream_seq if info.ack_floor else 0,
        delivered=info.delivered.stream_seq if info.delivered else 0,
        delivered_cseq=info.delivered.consumer_seq if info.delivered else 0,
        filter_subject=info.config.filter_subject,
        explicit_ack=info.config.ack_policy in (AckPolicy.EXPLICIT, "explicit"),
    )


async def reconcile(
    js: JetStreamContext,
    writer: Writer,
    projector: JetStreamProjector,
    max_ack_pending: int,
) -> tuple[PositionPlan, StreamState, int, int]:
    """Bring ``projector``'s durable in line with the database.

    Returns the plan, the stream's state, the effective checkpoint and the
    delivery sequence the durable has reached (0 for a new durable).
    """
    checkpoint = await writer.read(read_checkpoint, projector.name)
    stream = await _stream_state(js, projector.stream)
    consumer = await _consumer_state(js, projector.stream, projector.durable)
    plan = plan_position(checkpoint, stream, consumer, projector.filter_subject)
    ctx = {"projector": projector.name, "stream": projector.stream, "consumer": projector.durable}

    if plan.reset_checkpoint or plan.gap:

        def bookkeeping(conn):  # noqa: ANN001, ANN202
            if plan.reset_checkpoint:
                reset_checkpoint(conn, projector.name)
                if projector.on_stream_reset:
                    projector.on_stream_reset(conn)
            if plan.gap:
                record_gap(conn, projector.name, projector.stream, *plan.gap)

        await writer.transaction(bookkeeping)
    if plan.reset_checkpoint:
        log.warning("stream_recreated", seq=checkpoint.last_seq, reason=plan.reason, **ctx)
    if plan.gap:
        log.error(
            "projection_gap",
            seq=plan.gap[0],
            from_seq=plan.gap[0],
            to_seq=plan.gap[1],
            missing=plan.gap[1] - plan.gap[0] + 1,
            detail="messages aged out of the stream before they were applied",
            **ctx,
        )
    if plan.action == "recreate":
        await js.delete_consumer(projector.stream, projector.durable)
    if plan.action in ("create", "recreate"):
        await js.add_consumer(
            projector.stream, consumer_config(projector, plan.start_seq, max_ack_pending)
        )
    log.info(
        "durable_positioned",
        action=plan.action,
        seq=plan.start_seq - 1,
        start_seq=plan.start_seq,
        reason=plan.reason,
        stream_first_seq=stream.first_seq,
        stream_last_seq=stream.last_seq,
        **ctx,
    )
    delivered_cseq = consumer.delivered_cseq if consumer and plan.action == "keep" else 0
    return plan, stream, plan.start_seq - 1, delivered_cseq
