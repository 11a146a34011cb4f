"""A dependency-free progress bar with an ETA, for long command-line runs (written to stderr).

On a terminal the bar redraws in place; otherwise (logs, CI, Airflow) it writes one plain line at most every
`interval` seconds and always at the end, so redirected output stays readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        tty: bool | None = None,
        width: int = 30,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(0, total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.width = width
        self.interval = interval
        self.clock = clock
        self.done = 0
        self.note = ""
        self._started = clock()
        self._last_line = float("-inf")

    def eta(self) -> float | None:
        """Seconds left, from the average time per finished step so far (None before the first step)."""
        if self.done <= 0 or self.total <= 0:
            return None
        elapsed = self.clock() - self._started
        return elapsed / self.done * (self.total - self.done)

    def render(self) -> str:
        share = self.done / self.total if self.total else 1.0
        filled = int(self.width * share)
        bar = "#" * filled + "." * (self.width - filled)
        eta = self.eta()
        left = "ETA --:--" if eta is None else f"ETA {format_duration(eta)}"
        if self.done >= self.total:
            left = f"done in {format_duration(self.clock() - self._started)}"
        text = f"{self.label} [{bar}] {self.done}/{self.total} {share:4.0%} {left}".strip()
        return f"{text} {self.note}".rstrip()

    def update(self, steps: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + steps)
        self.note = note
        finished = self.done >= self.total
        if self.tty:
            self.stream.write("\r\x1b[K" + self.render() + ("\n" if finished else ""))
            self.stream.flush()
        elif finished or self.clock() - self._last_line >= self.interval:
            self._last_line = self.clock()
            self.stream.write(self.render() + "\n")
            self.stream.flush()
