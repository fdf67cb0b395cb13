"""Who a reconcile tick fires at: dedup, in-flight suppression, the concurrency cap.

scheduler.md sections 4 and 5, as pure functions over what the tick read:
completions (latest exit-0 ``finished_at`` per PC for the job), dispatch marks,
and the number of runs in flight.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

# scheduler.md 5: the window a dispatch mark suppresses a re-dispatch for.
DRAIN_MARGIN = timedelta(seconds=90)
WINDOW_MIN = timedelta(seconds=90)
WINDOW_MAX = timedelta(minutes=30)


def eligible_pcs(
    expected: Sequence[str],
    completions: Mapping[str, datetime],
    cooldown: timedelta | None,
    now: datetime,
) -> list[str]:
    """Once-per-PC: the PCs of ``expected`` (in order) that should run now.

    No success yet: eligible. A success and no cooldown: never again. A success
    and a cooldown: eligible once ``now - last >= cooldown`` (inclusive).
    """
    out = []
    for pc in expected:
        last = completions.get(pc)
        if last is None or (cooldown is not None and now - last >= cooldown):
            out.append(pc)
    return out


def target_armed(
    roster: Iterable[str],
    completions: Mapping[str, datetime],
    cooldown: timedelta | None,
    now: datetime,
) -> bool:
    """Once-per-target (the #912 rule): armed unless some PC of the roster succeeded
    recently enough. The roster includes offline PCs: a target that succeeded on a
    PC which then went offline must not fire again.
    """
    times = [completions[pc] for pc in roster if pc in completions]
    if not times:
        return True
    return cooldown is not None and now - max(times) >= cooldown


def suppression_window(
    jitter: timedelta, timeout: timedelta, retry_max: int, retry_backoff: timedelta
) -> timedelta:
    """How long a dispatch mark suppresses a re-dispatch.

    The retry term is added after the clamp, as the original does, so the
    window can exceed 30 minutes.
    """
    base = jitter + timeout + DRAIN_MARGIN
    clamped = min(max(base, WINDOW_MIN), WINDOW_MAX)
    return clamped + retry_max * (timeout + retry_backoff)


def unsuppressed(
    pcs: Sequence[str], marks: Mapping[str, datetime | None], window: timedelta, now: datetime
) -> list[str]:
    """The PCs without a mark younger than ``window``; a missing mark never suppresses."""
    return [pc for pc in pcs if (mark := marks.get(pc)) is None or now - mark >= window]


def in_flight_count(
    running: set[str], dispatched: Mapping[str, datetime], last_finished: Mapping[str, datetime]
) -> int:
    """PCs busy with the job: a run started and not finished, or dispatched (a mark
    inside the suppression window) and not yet finished since. The original counted
    only started runs, so PCs still sleeping their jitter let the cap overshoot.
    """
    waiting = {
        pc
        for pc, mark in dispatched.items()
        if (done := last_finished.get(pc)) is None or done < mark
    }
    return len(running | waiting)


def within_cap(pcs: Sequence[str], max_concurrent: int | None, in_flight: int) -> list[str]:
    """The first ``max_concurrent - in_flight`` PCs; all of them without a cap."""
    if max_concurrent is None:
        return list(pcs)
    return list(pcs[: max(0, max_concurrent - in_flight)])


def mark_key_pc(schedule_id: str, pc_id: str) -> str:
    """KV ``scheduler_dispatch`` key of a per-PC mark (wire-contract 3.1)."""
    return f"pc.{len(schedule_id.encode())}.{schedule_id}.{len(pc_id.encode())}.{pc_id}"


def mark_prefix_pc(schedule_id: str) -> str:
    """The common prefix of a schedule's per-PC mark keys."""
    return f"pc.{len(schedule_id.encode())}.{schedule_id}."


def mark_key_target(schedule_id: str) -> str:
    """KV ``scheduler_dispatch`` key of a whole-target mark."""
    return f"target.{len(schedule_id.encode())}.{schedule_id}"
