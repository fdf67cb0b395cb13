"""A projector loop that fails mid-batch is restarted without losing a message.

The failure is a real exception from a projector step (as a bug would raise),
against a real broker and database: after the supervisor restarts the loop,
every message must be projected exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses

from harness import query, wait_until
from wire import audit_event, body

from projectord.daemon import BrokerContext, _supervise
from projectord.database import Writer, create_writer_engine
from projectord.jetstream_consumer import JetStreamConsumer
from projectord.migrations import upgrade_to_head
from projectord.projectors import audit
from projectord.pulling import LocalPuller

OPTIONS = {
    "batch_size": 50,
    "fetch_wait_ms": 100,
    "max_ack_pending": 10000,
    "retry_max_backoff_s": 0.5,
    "reject_payload_bytes": 256,
}


async def test_failure_mid_batch_repositions_and_loses_nothing(nc, js, db_path):
    from projectord.broker_resources import ensure_resources

    await ensure_resources(js)
    calls = {"n": 0}

    async def flaky_enrich(records):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("bug in an enrichment step")

    projector = dataclasses.replace(audit.PROJECTOR, make_enrich=lambda _ctx: flaky_enrich)
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    writer = Writer(engine)
    stop = asyncio.Event()
    puller = LocalPuller(nc)
    ctx = BrokerContext(js, None)
    consumer = JetStreamConsumer(projector, js, writer, OPTIONS, ctx, stop, puller)
    task = asyncio.create_task(_supervise("audit", consumer.run, stop))
    try:
        acks = [await js.publish("audit.op.exec", body(audit_event())) for _ in range(400)]
        last = acks[-1].seq
        await wait_until(lambda: query(db_path, "SELECT COUNT(*) FROM audit_log")[0][0] >= 400, 60)
        assert calls["n"] > 3, "the loop must have been restarted after the failure"
        rows = query(db_path, "SELECT stream_seq FROM audit_log ORDER BY stream_seq")
        assert [r[0] for r in rows] == [a.seq for a in acks]
        await wait_until(lambda: consumer.checkpoint == last, 10)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        writer.close()
