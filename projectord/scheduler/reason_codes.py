"""Short fixed codes for the scheduler's decision reasons, for metric labels.

The reasons recorded in ``schedule_fires`` are sentences that may name a job,
a group, a date or a count; a metric label must come from a small fixed set,
so each reason is reduced to the code of the gate that gave it.
"""

from __future__ import annotations

# Matched against the start of the reason, in order.
_PREFIXES = (
    ("previous tick still running", "previous_tick_running"),
    ("agent-side event trigger", "agent_side_trigger"),
    ("freeze state unknown", "freeze_unknown"),
    ("frozen", "frozen"),
    ("inactive", "inactive"),
    ("outside window", "outside_window"),
    ("skip date", "skip_date"),
    ("blocked", "constraints_invalid"),
    ("missed while projectord was down", "missed"),
    ("no PC needs a run", "no_pc_needs_run"),
    ("every eligible PC has a dispatch in flight", "dispatch_in_flight"),
    ("previous dispatch still in flight", "dispatch_in_flight"),
    ("max_concurrent reached", "max_concurrent"),
    ("target already succeeded", "target_succeeded"),
    ("no PC of the target is alive", "no_pc_alive"),
    ("controller-tier job", "controller_tier"),
)


def reason_code(outcome: str, reason: str | None) -> str:
    """The code of a decision's reason: ``none`` for a fire, ``error`` for a failure,
    the gate's code for a skip (``other`` for a reason this table does not know)."""
    if outcome == "fired":
        return "none"
    if outcome == "failed":
        return "error"
    text = reason or ""
    if text.startswith("job not registered"):
        return "job_invalid" if " is invalid (" in text else "job_not_registered"
    for prefix, code in _PREFIXES:
        if text.startswith(prefix):
            return code
    return "other"
