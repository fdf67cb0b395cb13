"""Tie a child process's life to its parent's (Linux ``PR_SET_PDEATHSIG``).

A helper process left running after its parent was SIGKILLed keeps ports,
locks or broker subscriptions that the restarted parent then finds taken.
"""

from __future__ import annotations

import ctypes
import signal

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies.

    A no-op where prctl is missing (not Linux).
    """
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, sig)
    except (OSError, AttributeError):
        return
