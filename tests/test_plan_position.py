"""Every branch of positions.plan_position, and the consumer it asks for.

plan_position is pure: a checkpoint, the stream's state and the durable's state
in, a plan out (DESIGN decision 1; projection-semantics 8).
"""

from __future__ import annotations

import pytest
from nats.js.api import AckPolicy, DeliverPolicy

from projectord.checkpoints import Checkpoint
from projectord.positions import (
    ConsumerState,
    PositionPlan,
    StreamState,
    consumer_config,
    plan_position,
)
from projectord.projectors import audit, events, obs_events, results

CREATED = "2026-05-01T00:00:00.000000+00:00"
RECREATED = "2026-05-19T08:00:00.000000+00:00"
FILTER = "events.started.>"


def cp(last_seq: int, created: str | None = CREATED) -> Checkpoint:
    return Checkpoint(last_seq, created)


def stream(first: int, last: int, created: str | None = CREATED) -> StreamState:
    return StreamState(created, first, last)


def durable(ack_floor: int, filter_subject: str | None = FILTER, explicit: bool = True):
    return ConsumerState(ack_floor, filter_subject, explicit)


def plan(checkpoint, stream_state, consumer, filter_subject=FILTER) -> PositionPlan:
    return plan_position(checkpoint, stream_state, consumer, filter_subject)


def shape(p: PositionPlan) -> tuple:
    return (p.action, p.start_seq, p.reset_checkpoint, p.gap)


# --- no durable ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkpoint", "state", "expected"),
    [
        (cp(0, None), stream(1, 10), ("create", 1, False, None)),
        (cp(0, None), stream(0, 0), ("create", 1, False, None)),
        (cp(5), stream(1, 10), ("create", 6, False, None)),
        (cp(10), stream(1, 10), ("create", 11, False, None)),
    ],
)
def test_no_durable_creates_from_checkpoint_plus_one(checkpoint, state, expected):
    p = plan(checkpoint, state, None)
    assert shape(p) == expected
    assert p.reason == "no durable yet"


# --- durable position against the checkpoint ---------------------------------------------


def test_durable_ahead_is_recreated_from_checkpoint_plus_one():
    p = plan(cp(5), stream(1, 10), durable(8))
    assert shape(p) == ("recreate", 6, False, None)
    assert "8" in p.reason and "5" in p.reason


def test_durable_ahead_of_an_empty_database():
    # the wiped-DB case the original's #389 guard covered
    p = plan(cp(0, None), stream(1, 10), durable(10))
    assert shape(p) == ("recreate", 1, False, None)


@pytest.mark.parametrize("ack_floor", [0, 3, 4, 5])
def test_durable_behind_or_equal_is_kept(ack_floor):
    p = plan(cp(5), stream(1, 10), durable(ack_floor))
    assert shape(p) == ("keep", 6, False, None)
    assert p.reason == "durable not ahead of database"


def test_durable_one_ahead_is_recreated():
    assert shape(plan(cp(5), stream(1, 10), durable(6))) == ("recreate", 6, False, None)


# --- durable configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ("events.>", "events.started.>"),
        (None, "events.started.>"),
        ("", "events.started.>"),
        ("events.started.>", None),
        ("obs.>", "events.started.>"),
    ],
)
def test_filter_mismatch_recreates(theirs, ours):
    p = plan(cp(5), stream(1, 10), durable(3, theirs), ours)
    assert shape(p) == ("recreate", 6, False, None)
    assert p.reason == "durable config differs from ours"


@pytest.mark.parametrize(("theirs", "ours"), [(None, None), ("", None), (FILTER, FILTER)])
def test_same_filter_is_kept(theirs, ours):
    assert plan(cp(5), stream(1, 10), durable(3, theirs), ours).action == "keep"


def test_non_explicit_ack_recreates():
    p = plan(cp(5), stream(1, 10), durable(3, explicit=False))
    assert shape(p) == ("recreate", 6, False, None)
    assert p.reason == "durable config differs from ours"


# --- stream recreated --------------------------------------------------------------------


def test_stream_created_time_change_resets_the_checkpoint():
    p = plan(cp(50, CREATED), stream(1, 100, RECREATED), None)
    assert shape(p) == ("create", 1, True, None)
    assert "recreated" in p.reason


def test_stream_recreated_with_durable_ahead_of_reset_checkpoint():
    p = plan(cp(50, CREATED), stream(1, 100, RECREATED), durable(60))
    assert shape(p) == ("recreate", 1, True, None)
    assert "recreated" in p.reason


def test_stream_recreated_with_fresh_durable_keeps_it():
    p = plan(cp(50, CREATED), stream(1, 100, RECREATED), durable(0))
    assert shape(p) == ("keep", 1, True, None)


def test_stream_last_seq_below_checkpoint_resets():
    p = plan(cp(50, CREATED), stream(1, 3, CREATED), None)
    assert shape(p) == ("create", 1, True, None)
    assert "recreated" in p.reason


def test_empty_recreated_stream_below_checkpoint_resets_without_gap():
    p = plan(cp(50, CREATED), stream(0, 0, RECREATED), None)
    assert shape(p) == ("create", 1, True, None)


def test_unknown_creation_time_cannot_detect_recreation():
    # a checkpoint written before creation times were stored, or a stream without one
    assert shape(plan(cp(5, None), stream(1, 10, RECREATED), None)) == ("create", 6, False, None)
    assert shape(plan(cp(5, CREATED), stream(1, 10, None), None)) == ("create", 6, False, None)


def test_same_creation_time_and_checkpoint_at_end_is_no_reset():
    assert shape(plan(cp(10), stream(1, 10), durable(10))) == ("keep", 11, False, None)


def test_empty_checkpoint_is_never_reset():
    p = plan(cp(0, CREATED), stream(1, 10, RECREATED), None)
    assert shape(p) == ("create", 1, False, None)


# --- aged-out gaps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checkpoint", "state", "consumer", "expected"),
    [
        # checkpoint + 1 aged out: the gap is exactly the missing sequences
        (cp(5), stream(20, 30), None, ("create", 6, False, (6, 19))),
        (cp(5), stream(20, 30), durable(5), ("keep", 6, False, (6, 19))),
        (cp(5), stream(20, 30), durable(25), ("recreate", 6, False, (6, 19))),
        (cp(5), stream(7, 30), None, ("create", 6, False, (6, 6))),
        # never applied anything, the stream's head already gone
        (cp(0, None), stream(20, 30), None, ("create", 1, False, (1, 19))),
        # every message aged out: JetStream reports first = last + 1
        (cp(0, None), stream(11, 10), None, ("create", 1, False, (1, 10))),
        (cp(4), stream(11, 10), durable(4), ("keep", 5, False, (5, 10))),
        # recreated stream whose head aged out too
        (cp(50, CREATED), stream(5, 10, RECREATED), None, ("create", 1, True, (1, 4))),
    ],
)
def test_aged_out_gap(checkpoint, state, consumer, expected):
    assert shape(plan(checkpoint, state, consumer)) == expected


@pytest.mark.parametrize(
    ("checkpoint", "state"),
    [
        (cp(5), stream(6, 30)),  # checkpoint + 1 is the stream's first message
        (cp(5), stream(1, 30)),
        (cp(10), stream(11, 10)),  # everything applied, then aged out
        (cp(0, None), stream(1, 1)),
        (cp(0, None), stream(0, 0)),  # empty, never-used stream
    ],
)
def test_no_gap(checkpoint, state):
    assert plan(checkpoint, state, None).gap is None


# --- the consumer asked for --------------------------------------------------------------


def test_consumer_config_from_the_start_delivers_all():
    cfg = consumer_config(events.PROJECTOR, 1, 1234)
    assert cfg.deliver_policy == DeliverPolicy.ALL
    assert cfg.opt_start_seq is None
    assert cfg.durable_name == cfg.name == "backend_events_projector"
    assert cfg.filter_subject == "events.started.>"
    assert cfg.ack_policy == AckPolicy.EXPLICIT
    assert cfg.max_ack_pending == 1234


@pytest.mark.parametrize("start", [2, 6, 1_000_000])
def test_consumer_config_from_a_sequence(start):
    cfg = consumer_config(events.PROJECTOR, start, 20000)
    assert cfg.deliver_policy == DeliverPolicy.BY_START_SEQUENCE
    assert cfg.opt_start_seq == start
    assert cfg.durable_name == cfg.name == "backend_events_projector"
    assert cfg.ack_policy == AckPolicy.EXPLICIT


@pytest.mark.parametrize(
    ("projector", "stream_name", "durable_name", "filter_subject"),
    [
        (results.PROJECTOR, "RESULTS", "backend_results_projector", None),
        (events.PROJECTOR, "EVENTS", "backend_events_projector", "events.started.>"),
        (audit.PROJECTOR, "AUDIT", "backend_audit_projector", None),
        (obs_events.PROJECTOR, "OBS_EVENTS", "backend_obs_events_projector", "obs.>"),
    ],
)
def test_durable_names_are_the_originals(projector, stream_name, durable_name, filter_subject):
    assert (projector.stream, projector.durable, projector.filter_subject) == (
        stream_name,
        durable_name,
        filter_subject,
    )
    cfg = consumer_config(projector, 7, 100)
    assert (cfg.name, cfg.durable_name, cfg.filter_subject) == (
        durable_name,
        durable_name,
        filter_subject,
    )
    # a durable we create is one plan_position keeps on the next start
    state = durable(0, cfg.filter_subject, cfg.ack_policy == AckPolicy.EXPLICIT)
    assert plan_position(cp(6), stream(1, 10), state, projector.filter_subject).action == "keep"


# --- delivered to a killed process but never committed --------------------------------------


@pytest.mark.parametrize(
    ("ack_floor", "delivered", "expected"),
    [
        (90, 120, ("recreate", 101, False, None)),  # fetched past the checkpoint, then killed
        (100, 101, ("recreate", 101, False, None)),
        (90, 100, ("keep", 101, False, None)),  # committed, only the acks were lost
        (100, 100, ("keep", 101, False, None)),
    ],
)
def test_durable_delivered_past_the_checkpoint_is_recreated(ack_floor, delivered, expected):
    consumer = ConsumerState(ack_floor, FILTER, True, delivered=delivered)
    p = plan(cp(100), stream(1, 200), consumer)
    assert shape(p) == expected
    if p.action == "recreate":
        assert f"delivered up to {delivered}" in p.reason
