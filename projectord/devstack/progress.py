"""Start-up progress on the terminal: one line per component, with its timing.

On a terminal a waiting step rewrites its own line (``agents online 120/300``);
elsewhere (a log file, CI) only the final line of each step is printed.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

LABEL_WIDTH = 28


class Progress:
    """Prints ``  ok  <label>  <detail>  (1.2 s)`` lines as components come up."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.label = ""
        self.started = 0.0

    def begin(self, label: str) -> None:
        self.label, self.started = label, time.monotonic()
        self.update("starting")

    def update(self, detail: str) -> None:
        """Show how far the current step is (terminal only)."""
        if self.tty:
            self._line("..", detail, end="\r")

    def done(self, detail: str) -> None:
        self._line("ok", f"{detail}  ({time.monotonic() - self.started:.1f} s)")

    def warn(self, detail: str) -> None:
        self._line("!!", detail)

    def fail(self, detail: str) -> None:
        self._line("XX", detail)

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def _line(self, mark: str, detail: str, end: str = "\n") -> None:
        clear = "\x1b[2K" if self.tty else ""
        print(f"{clear}  {mark}  {self.label:<{LABEL_WIDTH}}{detail}", end=end, file=self.out)
        self.out.flush()
