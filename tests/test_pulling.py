"""The pull helper process, driven directly: bind, fetch, ack, errors, close."""

from __future__ import annotations

import asyncio

import psutil
import pytest
from harness import NatsServer

from projectord import pull_frames
from projectord.broker_resources import ensure_resources
from projectord.config import load_settings
from projectord.positions import consumer_config
from projectord.projectors import audit
from projectord.pulling import HelperPuller, LocalPuller, PullHelperGone


def helper_puller(server: NatsServer) -> HelperPuller:
    settings = load_settings(None, {"KANADE_NATS_URL": server.url})
    return HelperPuller(settings.section("nats"), {"format": "json", "level": "warning"})


async def audit_durable(js) -> None:
    await ensure_resources(js)
    await js.add_consumer("AUDIT", consumer_config(audit.PROJECTOR, 1, 1000))


async def test_frames_round_trip():
    reader = asyncio.StreamReader()
    frames = [("fetch", 7, "AUDIT", 100, 0.5), ("ok", 7, [("s", b"\x00\xff", "r")]), None]
    for frame in frames:
        reader.feed_data(pull_frames.encode(frame))
    reader.feed_eof()
    assert [await pull_frames.read(reader) for _ in frames] == frames
    with pytest.raises(asyncio.IncompleteReadError):
        await pull_frames.read(reader)


@pytest.mark.parametrize("kind", ["helper", "local"])
async def test_fetch_then_ack_leaves_nothing_pending(nats_server, nc, js, kind):
    await audit_durable(js)
    sent = [await js.publish("audit.op.exec", f"m{i}".encode()) for i in range(30)]
    puller = helper_puller(nats_server) if kind == "helper" else LocalPuller(nc)
    try:
        await puller.bind("AUDIT", audit.PROJECTOR.durable, 100)
        got = await puller.fetch("AUDIT", 20, 1.0)
        got += await puller.fetch("AUDIT", 20, 1.0)
        assert [(m.subject, m.data) for m in got] == [
            ("audit.op.exec", f"m{i}".encode()) for i in range(30)
        ]
        assert all(m.reply.startswith("$JS.ACK.AUDIT.") for m in got)
        assert await puller.fetch("AUDIT", 20, 0.2) == []  # nothing left: empty, no error
        await puller.ack("AUDIT", [m.reply for m in got])
        for _ in range(50):
            info = await js.consumer_info("AUDIT", audit.PROJECTOR.durable)
            if info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.1)
        assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == sent[-1].seq
    finally:
        await puller.close()


@pytest.mark.parametrize("kind", ["helper", "local"])
async def test_fetching_an_unbound_stream_names_it(nats_server, nc, kind):
    puller = helper_puller(nats_server) if kind == "helper" else LocalPuller(nc)
    try:
        with pytest.raises(
            (RuntimeError, LookupError), match="no durable bound for stream RESULTS"
        ):
            await puller.fetch("RESULTS", 10, 0.1)
    finally:
        await puller.close()


async def test_a_dead_helper_fails_the_waiting_fetch_and_is_started_again(nats_server, js):
    await audit_durable(js)
    puller = helper_puller(nats_server)
    try:
        await puller.bind("AUDIT", audit.PROJECTOR.durable, 100)
        first = psutil.Process(puller.proc.pid)
        waiting = asyncio.create_task(puller.fetch("AUDIT", 10, 5.0))  # long poll, empty stream
        await asyncio.sleep(0.3)
        first.kill()
        with pytest.raises(PullHelperGone):
            await waiting
        # The next call starts a new helper, which knows no durable until bound again.
        with pytest.raises(RuntimeError, match="no durable bound"):
            await puller.fetch("AUDIT", 10, 0.1)
        assert puller.proc.pid != first.pid
        await puller.bind("AUDIT", audit.PROJECTOR.durable, 100)
        await js.publish("audit.op.exec", b"after")
        assert [m.data for m in await puller.fetch("AUDIT", 10, 1.0)] == [b"after"]
    finally:
        await puller.close()


async def test_close_ends_the_helper_cleanly(nats_server):
    puller = helper_puller(nats_server)
    with pytest.raises(RuntimeError):
        await puller.fetch("AUDIT", 1, 0.1)  # starts the helper (and names no durable)
    proc = puller.proc
    await puller.close()
    assert proc.returncode == 0
