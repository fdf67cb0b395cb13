"""Child processes of the dev stack: started in their own session, stopped in order.

Each child gets its own session so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in the right order (simulator first,
broker last) instead of all at once. Each child is also asked to die with the
supervisor, so a killed supervisor leaves nothing running on the ports.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..parent_death import die_with_parent


@dataclass
class Child:
    """A named child process and the file its output goes to."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def exited(self) -> int | None:
        """The exit status, or None while it runs."""
        return self.proc.poll()

    def stop(self, timeout: float) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of its output, for telling why it stopped."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def spawn(name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str]) -> Child:
    """Start ``argv`` with stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only a prctl, no locks taken
        )
    return Child(name, proc, log_path)
