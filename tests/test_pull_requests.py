"""JetStream pull requests on one inbox (projectord/pull_requests.py), against a real server."""

from __future__ import annotations

import asyncio
import time

import pytest

from projectord.broker_resources import ensure_resources
from projectord.positions import consumer_config
from projectord.projectors import audit
from projectord.pull_requests import PullInbox, PullRefused

DURABLE = audit.PROJECTOR.durable


async def audit_inbox(nc, js, published: int) -> PullInbox:
    await ensure_resources(js)
    await js.add_consumer("AUDIT", consumer_config(audit.PROJECTOR, 1, 1000))
    for i in range(published):
        await js.publish("audit.op.exec", f"m{i}".encode())
    inbox = PullInbox(nc, "AUDIT", DURABLE)
    await inbox.subscribe(100)
    return inbox


def delivery_seq(reply: str) -> int:
    return int(reply.split(".")[6])  # $JS.ACK.<stream>.<consumer>.<dlv>.<sseq>.<cseq>...


async def test_a_short_batch_comes_back_without_waiting_for_the_timeout(nc, js):
    inbox = await audit_inbox(nc, js, 3)
    try:
        started = time.monotonic()
        got = await inbox.fetch(1000, 10.0)
        assert [m.data for m in got] == [b"m0", b"m1", b"m2"]
        assert [m.subject for m in got] == ["audit.op.exec"] * 3
        assert time.monotonic() - started < 5.0  # the no_wait answer, not the 10 s wait
    finally:
        await inbox.unsubscribe()


async def test_a_full_batch_leaves_the_rest_for_the_next_fetch(nc, js):
    inbox = await audit_inbox(nc, js, 25)
    try:
        batches = [await inbox.fetch(10, 1.0) for _ in range(3)]
        assert [len(b) for b in batches] == [10, 10, 5]
        replies = [m.reply for b in batches for m in b]
        assert [delivery_seq(r) for r in replies] == list(range(1, 26))
    finally:
        await inbox.unsubscribe()


async def test_an_idle_fetch_waits_for_the_next_message(nc, js):
    inbox = await audit_inbox(nc, js, 0)
    try:
        started = time.monotonic()
        assert await inbox.fetch(10, 0.3) == []  # nothing came: empty, no error
        assert time.monotonic() - started >= 0.25
        waiting = asyncio.create_task(inbox.fetch(10, 10.0))
        await asyncio.sleep(0.3)
        await js.publish("audit.op.exec", b"late")
        assert [m.data for m in await waiting] == [b"late"]
    finally:
        await inbox.unsubscribe()


async def test_deliveries_of_an_earlier_request_are_kept_in_order(nc, js):
    inbox = await audit_inbox(nc, js, 5)
    try:
        # A request that outlived its fetch (as after a timeout) delivers later;
        # those messages come first in the next fetch, with no delivery skipped.
        await nc.publish(inbox.next_subject, b'{"batch": 5, "no_wait": true}', inbox.inbox)
        await nc.flush()
        await asyncio.sleep(0.3)
        first = await inbox.fetch(2, 1.0)
        rest = await inbox.fetch(10, 1.0)
        assert [m.data for m in first + rest] == [f"m{i}".encode() for i in range(5)]
        assert [delivery_seq(m.reply) for m in first + rest] == [1, 2, 3, 4, 5]
    finally:
        await inbox.unsubscribe()


async def test_pulling_from_a_deleted_durable_is_an_error_naming_it(nc, js):
    inbox = await audit_inbox(nc, js, 0)
    await js.delete_consumer("AUDIT", DURABLE)
    try:
        refused = f"AUDIT.{DURABLE} refused: 503 no responders: the durable"
        with pytest.raises(PullRefused, match=refused):
            await inbox.fetch(10, 2.0)
    finally:
        await inbox.unsubscribe()
