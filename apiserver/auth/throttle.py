"""Login throttling, as the original: per user and per client address, in memory.

Only failed attempts count. Five consecutive failures lock the user name for
15 minutes; thirty failures from one address within a minute block that address
for the rest of the minute. A success clears the user's count. Both maps are
pruned when they grow past 4096 keys, so a flood of made-up names cannot grow
memory without bound.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

USER_FAILURES = 5
USER_LOCK_S = 15 * 60
IP_FAILURES = 30
IP_WINDOW_S = 60
MAX_KEYS = 4096


class LoginThrottle:
    """Failure counts by user name and by address; ``clock`` returns seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.users: dict[str, tuple[int, float]] = {}  # name -> (failures, locked until)
        self.addresses: dict[str, deque[float]] = {}  # address -> failure times

    def retry_after(self, user: str, address: str) -> int | None:
        """Seconds to wait (for ``Retry-After``) when throttled, else None."""
        now = self.clock()
        waits = []
        _, locked_until = self.users.get(user, (0, 0.0))
        if locked_until > now:
            waits.append(locked_until - now)
        times = self._recent(address, now)
        if len(times) >= IP_FAILURES:
            waits.append(times[0] + IP_WINDOW_S - now)
        return math.ceil(max(waits)) + 1 if waits else None

    def failed(self, user: str, address: str) -> None:
        now = self.clock()
        count, _ = self.users.get(user, (0, 0.0))
        count += 1
        locked_until = now + USER_LOCK_S if count >= USER_FAILURES else 0.0
        self.users[user] = (0 if locked_until else count, locked_until)
        self._recent(address, now).append(now)
        self._prune(now)

    def succeeded(self, user: str) -> None:
        self.users.pop(user, None)

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self.addresses.get(address)
        if times is None:
            times = self.addresses[address] = deque()
        while times and times[0] <= now - IP_WINDOW_S:
            times.popleft()
        return times

    def _prune(self, now: float) -> None:
        if len(self.users) > MAX_KEYS:
            self.users = {u: v for u, v in self.users.items() if v[1] > now}
        if len(self.addresses) > MAX_KEYS:
            self.addresses = {
                a: t for a, t in self.addresses.items() if t and t[-1] > now - IP_WINDOW_S
            }
