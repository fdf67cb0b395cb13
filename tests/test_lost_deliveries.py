"""A gap in the delivery sequence cuts the batch, so nothing after it is committed.

Deliveries lost in transit would otherwise come back after ack_wait, behind
messages the checkpoint has passed, and be skipped as applied.
"""

from __future__ import annotations

import asyncio

from projectord.jetstream_consumer import JetStreamConsumer
from projectord.projectors import audit
from projectord.projectors.contract import Delivery

OPTIONS = {
    "batch_size": 10,
    "fetch_wait_ms": 100,
    "max_ack_pending": 100,
    "retry_max_backoff_s": 1.0,
    "reject_payload_bytes": 100,
}


def consumer(next_cseq: int) -> JetStreamConsumer:
    c = JetStreamConsumer(audit.PROJECTOR, None, None, OPTIONS, None, asyncio.Event(), None)
    c.next_cseq = next_cseq
    return c


def deliveries(*cseqs: int) -> list[Delivery]:
    return [Delivery("audit.x", b"{}", 100 + c, "t", None, c) for c in cseqs]


def test_contiguous_deliveries_pass_whole():
    c = consumer(5)
    assert [d.delivery_seq for d in c._cut_at_lost_delivery(deliveries(5, 6, 7))] == [5, 6, 7]
    assert c.next_cseq == 8 and not c.lost_deliveries


def test_a_gap_cuts_the_batch_and_asks_for_repositioning():
    c = consumer(5)
    kept = c._cut_at_lost_delivery(deliveries(5, 6, 9, 10))
    assert [d.delivery_seq for d in kept] == [5, 6]
    assert c.lost_deliveries and c.next_cseq == 7


def test_a_gap_before_the_first_delivery_keeps_nothing():
    c = consumer(5)
    assert c._cut_at_lost_delivery(deliveries(8, 9)) == []
    assert c.lost_deliveries
