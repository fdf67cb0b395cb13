"""Broker resources at boot (wire-contract.md 2-4): create, reconcile, leave alone."""

from __future__ import annotations

from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from projectord.broker_resources import ensure_resources

MIB = 1024**2
GIB = 1024**3
DAY = 86400

# wire-contract.md section 2: name -> (subjects, max_age days, max_bytes, max_msgs_per_subject)
STREAMS = {
    "INVENTORY": (["inventory.>"], 90, 1 * GIB, -1),
    "RESULTS": (["results.>"], 30, 2 * GIB, -1),
    "EXEC": (["commands.>"], 7, 64 * MIB, 1),
    "EVENTS": (["events.>"], 7, 256 * MIB, -1),
    "AUDIT": (["audit.>"], 90, 512 * MIB, -1),
    "OBS_EVENTS": (["obs.>"], 90, 512 * MIB, -1),
    "NOTIFICATIONS": (["notifications.>"], 90, 512 * MIB, -1),
}
# section 3: bucket -> history; none has a TTL (scheduler_dispatch is created on first use)
KV = {
    "schedules": 5,
    "jobs": 5,
    "fleet_config": 1,
    "server_settings": 1,
    "agent_groups": 1,
    "agent_groups_derived": 1,
    "script_current": 5,
    "script_status": 5,
    "schedules_yaml": 5,
    "jobs_yaml": 5,
}
# section 4: store -> (max_age days or 0 = none, max_bytes or -1 = none)
OBJECT_STORES = {
    "result_output": (30, 1 * GIB),
    "scripts": (0, -1),
    "collections": (30, 5 * GIB),
}


async def config_of(js, stream):
    return (await js.stream_info(stream)).config


def assert_stream_contract(cfg, name):
    subjects, days, max_bytes, per_subject = STREAMS[name]
    assert sorted(cfg.subjects) == subjects, name
    assert cfg.max_age == days * DAY, name
    assert cfg.max_bytes == max_bytes, name
    assert cfg.max_msgs_per_subject == per_subject, name
    assert cfg.discard == DiscardPolicy.OLD, name
    assert cfg.storage == StorageType.FILE, name
    assert cfg.retention == RetentionPolicy.LIMITS, name
    assert cfg.num_replicas == 1, name


async def test_creates_every_resource_with_the_contract_config(js):
    outcome = await ensure_resources(js)
    expected = {*STREAMS, *(f"KV_{b}" for b in KV), *(f"OBJ_{s}" for s in OBJECT_STORES)}
    assert set(outcome) == expected
    assert set(outcome.values()) == {"created"}
    for name in STREAMS:
        cfg = await config_of(js, name)
        assert_stream_contract(cfg, name)
        assert cfg.max_msgs in (-1, None), f"{name}: no max_msgs"
    for bucket, history in KV.items():
        cfg = await config_of(js, f"KV_{bucket}")
        assert cfg.max_msgs_per_subject == history, bucket
        assert not cfg.max_age, f"{bucket} must have no TTL"
        assert cfg.storage == StorageType.FILE, bucket
        kv = await js.key_value(bucket)  # usable as a KV bucket
        assert (await kv.status()).history == history
    for store, (days, max_bytes) in OBJECT_STORES.items():
        cfg = await config_of(js, f"OBJ_{store}")
        assert (cfg.max_age or 0) == days * DAY, store
        assert (cfg.max_bytes or -1) == max_bytes, store
        await js.object_store(store)  # usable as an object store
    # scheduler_dispatch is created by the scheduler on first use, not at boot.
    assert "KV_scheduler_dispatch" not in {s.config.name for s in await js.streams_info()}


async def test_running_twice_changes_nothing(js):
    await ensure_resources(js)
    kv = await js.key_value("jobs")
    await kv.put("inv-hw", b'{"id":"inv-hw"}')
    await js.publish("results.req-1", b"{}")
    before = {s.config.name: s for s in await js.streams_info()}
    outcome = await ensure_resources(js)
    assert set(outcome.values()) == {"unchanged"}
    after = {s.config.name: s for s in await js.streams_info()}
    assert after.keys() == before.keys()
    for name, info in after.items():
        assert info.config == before[name].config, name
        assert info.created == before[name].created, f"{name} was recreated"
        assert info.state.messages == before[name].state.messages, name
    assert (await kv.get("inv-hw")).value == b'{"id":"inv-hw"}'


async def test_drifted_streams_are_updated_and_keep_their_messages(js):
    # Limits as an older deployment might have left them.
    await js.add_stream(
        StreamConfig(
            name="RESULTS",
            subjects=["results.>"],
            max_age=7 * DAY,
            max_bytes=100 * MIB,
            max_msgs_per_subject=10,
            discard=DiscardPolicy.NEW,
            storage=StorageType.FILE,
        )
    )
    await js.add_stream(
        StreamConfig(name="AUDIT", subjects=["audit.*.*"], max_age=30 * DAY, max_bytes=64 * MIB)
    )
    await js.add_stream(
        StreamConfig(name="EXEC", subjects=["commands.>"], max_age=DAY, max_bytes=64 * MIB)
    )
    for i in range(5):
        await js.publish(f"results.req-{i}", b'{"n": %d}' % i)
    await js.publish("audit.operator.exec", b'{"a": 1}')
    await js.publish("commands.all", b'{"v": 1}')
    await js.publish("commands.all", b'{"v": 2}')
    await js.publish("commands.pc.PC-01", b'{"v": 3}')
    created = {n: (await js.stream_info(n)).created for n in ("RESULTS", "AUDIT", "EXEC")}

    outcome = await ensure_resources(js)
    for name in ("RESULTS", "AUDIT", "EXEC"):
        assert outcome[name].startswith("updated"), outcome[name]
        info = await js.stream_info(name)
        assert_stream_contract(info.config, name)
        assert info.created == created[name], f"{name} must be updated in place"
    assert "discard" in outcome["RESULTS"] and "max_msgs_per_subject" in outcome["RESULTS"]
    assert "subjects" in outcome["AUDIT"]

    results = await js.stream_info("RESULTS")
    assert (results.state.messages, results.state.first_seq, results.state.last_seq) == (5, 1, 5)
    assert (await js.get_msg("RESULTS", 3)).data == b'{"n": 2}'
    assert (await js.stream_info("AUDIT")).state.messages == 1
    # The widened subject filter takes deeper audit subjects now.
    await js.publish("audit.operator.exec.inv-hw", b'{"a": 2}')
    assert (await js.stream_info("AUDIT")).state.messages == 2
    # EXEC keeps the newest Command per subject.
    assert (await js.get_msg("EXEC", subject="commands.all")).data == b'{"v": 2}'
    assert (await js.get_msg("EXEC", subject="commands.pc.PC-01")).data == b'{"v": 3}'
    assert (await js.stream_info("EXEC")).state.messages == 2


async def test_drifted_max_msgs_is_removed(js):
    # The contract fixes "no max_msgs" on every stream; a cap left by an older
    # deployment would silently age out results long before max_age.
    await js.add_stream(
        StreamConfig(
            name="RESULTS",
            subjects=["results.>"],
            max_age=30 * DAY,
            max_bytes=2 * GIB,
            max_msgs=1000,
        )
    )
    for i in range(3):
        await js.publish(f"results.req-{i}", b"{}")
    await ensure_resources(js)
    info = await js.stream_info("RESULTS")
    assert info.config.max_msgs in (-1, None), f"max_msgs still {info.config.max_msgs}"
    assert info.state.messages == 3


async def test_drifted_kv_history_and_object_store_limits_are_updated(js):
    jobs = await js.create_key_value(KeyValueConfig(bucket="jobs", history=1))
    freeze = await js.create_key_value(KeyValueConfig(bucket="fleet_config", history=5))
    await jobs.put("inv-hw", b"v1")
    for v in (b"a", b"b", b"c"):
        await freeze.put("freeze", v)
    await js.create_object_store(
        "result_output", config=ObjectStoreConfig(ttl=7 * DAY, max_bytes=10 * MIB)
    )

    outcome = await ensure_resources(js)
    assert outcome["KV_jobs"].startswith("updated")
    assert outcome["KV_fleet_config"].startswith("updated")
    assert outcome["OBJ_result_output"].startswith("updated")
    assert (await config_of(js, "KV_jobs")).max_msgs_per_subject == 5
    assert (await config_of(js, "KV_fleet_config")).max_msgs_per_subject == 1
    obj = await config_of(js, "OBJ_result_output")
    assert (obj.max_age, obj.max_bytes) == (30 * DAY, 1 * GIB)

    # Values survive, and the buckets now behave with their contract history.
    jobs = await js.key_value("jobs")
    assert (await jobs.get("inv-hw")).value == b"v1"
    for v in (b"v2", b"v3", b"v4"):
        await jobs.put("inv-hw", v)
    assert [e.value for e in await jobs.history("inv-hw")] == [b"v1", b"v2", b"v3", b"v4"]
    freeze = await js.key_value("fleet_config")
    assert [e.value for e in await freeze.history("freeze")] == [b"c"]
