"""What a projector is: a decoder, an optional async enrichment, and an apply step.

A projector module exposes one :class:`JetStreamProjector` (or, for core-NATS
subjects, a :class:`CoreProjector`). The consume loop owns fetching, batching,
checkpoints, rejects and acks; projectors only turn messages into rows.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from nats.aio.msg import Msg
from sqlalchemy import Connection

from ..timestamps import format_unix_nanos, now_db


class Rejected(Exception):
    """A message cannot be projected: undecodable or against the wire contract.

    The message names the field and what was expected. Rejected messages are
    recorded in ``projector_rejects`` and acked, never silently dropped.
    """


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as projectors see it.

    ``seq`` is the JetStream stream sequence (None on core NATS) and
    ``delivery_seq`` the consumer's delivery sequence; ``published_at`` is the
    broker's publish time in storage format (core NATS: arrival time).
    """

    subject: str
    data: bytes
    seq: int | None
    published_at: str
    msg: Any = None  # what it was delivered as, to ack it by
    delivery_seq: int | None = None

    @classmethod
    def from_jetstream(cls, msg: Any) -> Delivery:
        """From a pulled message (subject, data and the ``$JS.ACK`` reply subject)."""
        tokens = msg.reply.split(".")
        if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<dlv>.<sseq>.<cseq>.<ts>.<pending>
            seq, cseq, nanos = int(tokens[5]), int(tokens[6]), int(tokens[7])
        else:  # $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<dlv>.<sseq>.<cseq>.<ts>...
            seq, cseq, nanos = int(tokens[7]), int(tokens[8]), int(tokens[9])
        published = format_unix_nanos(nanos)
        return cls(msg.subject, msg.data, seq, published, msg, cseq)

    @classmethod
    def from_core(cls, msg: Msg) -> Delivery:
        return cls(msg.subject, msg.data, None, now_db(), msg)


def decode_object(delivery: Delivery) -> dict[str, Any]:
    """The body as a JSON object, or Rejected saying why not."""
    try:
        body = orjson.loads(delivery.data)
    except orjson.JSONDecodeError:
        # orjson is four times faster but strict and terse: the standard parser
        # has the last word on what failed (it also reads ints beyond 64 bits
        # and NaN, which the field readers then reject by name).
        body = _stdlib_loads(delivery.data)
    if not isinstance(body, dict):
        raise Rejected(f"body must be a JSON object, got {type(body).__name__}")
    return body


def _stdlib_loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise Rejected(f"body is not UTF-8: {exc}") from None
    except ValueError as exc:
        raise Rejected(f"body is not JSON: {exc}") from None


Decode = Callable[[Delivery], Any]
Apply = Callable[[Connection, Sequence[Any]], None]
Enrich = Callable[[Sequence[Any]], Awaitable[None]]


@dataclass(frozen=True)
class JetStreamProjector:
    """A projector fed by a durable pull consumer on one stream.

    ``decode`` is pure and raises Rejected; ``apply`` writes a batch of decoded
    records inside the caller's transaction and must be idempotent (the same
    records applied twice leave the same rows). ``make_enrich``, when given,
    builds from the broker context an async step run on decoded records before
    the transaction (object-store or KV reads). ``on_stream_reset``, when given,
    runs when the stream was recreated and its sequence numbers start over.
    """

    name: str
    stream: str
    durable: str
    filter_subject: str | None
    decode: Decode
    apply: Apply
    make_enrich: Callable[[Any], Enrich] | None = None
    on_stream_reset: Callable[[Connection], None] | None = None


@dataclass(frozen=True)
class CoreProjector:
    """A projector fed by a core-NATS subscription, micro-batched in memory.

    ``key`` (optional) coalesces records in the buffer: a record with the same
    key is combined with the buffered one by ``merge(old, new)``.
    """

    name: str
    subject: str
    decode: Decode
    apply: Apply
    key: Callable[[Any], Any] | None = None
    merge: Callable[[Any, Any], Any] | None = None
