"""A progress bar with an ETA for long command-line runs (stderr), drawn by rich on a terminal.

On a terminal rich.progress redraws the bar in place (no refresh thread: it redraws on each step). Elsewhere
(logs, CI, Airflow) rich would draw nothing until the end, so a plain line is written at most every
`interval` seconds and at the end, and redirected output stays readable. Use it as a context manager so the
terminal's cursor comes back even when the run stops half-way.

The ETA is ours, not rich's TimeRemainingColumn: rich estimates speed only from steps finished within the
last 30 s and needs two of them, so a backfill whose days take a minute each would never show one; ours is
the average time per finished step so far, known from the first step on. rich is imported only for a
terminal (about 30 ms of a run's start-up elsewhere).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress


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
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(0, total)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.clock = clock
        self.done = 0
        self.note = ""
        self._started = clock()
        self._last_line = float("-inf")
        self._bar: RichProgress | None = None
        if self.tty:
            self._bar = _rich_bar(self)
            self._task = self._bar.add_task(label, total=self.total, note="")
            self._bar.start()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop drawing (idempotent): the bar stays on screen as last drawn, the cursor comes back."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def eta(self) -> float | None:
        """Seconds left, from the average time per finished step so far (None before the first step)."""
        if self.done <= 0 or self.total <= 0:
            return None
        elapsed = self.clock() - self._started
        return elapsed / self.done * (self.total - self.done)

    def left(self) -> str:
        """'ETA mm:ss' while running, 'done in mm:ss' at the end."""
        if self.done >= self.total:
            return f"done in {format_duration(self.clock() - self._started)}"
        eta = self.eta()
        return "ETA --:--" if eta is None else f"ETA {format_duration(eta)}"

    def render(self) -> str:
        """The plain line written where there is no terminal."""
        share = self.done / self.total if self.total else 1.0
        text = f"{self.label} {self.done}/{self.total} {share:4.0%} {self.left()}".strip()
        return f"{text} {self.note}".rstrip()

    def update(self, steps: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + steps)
        self.note = note
        finished = self.done >= self.total
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, note=note)
            self._bar.refresh()
            if finished:
                self.close()
        elif not self.tty and (finished or self.clock() - self._last_line >= self.interval):
            self._last_line = self.clock()
            self.stream.write(self.render() + "\n")
            self.stream.flush()


def _rich_bar(progress: Progress) -> RichProgress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        Task,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class EtaColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(progress.left(), style="progress.remaining")

    return RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        EtaColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[note]}"),
        console=Console(file=progress.stream, force_terminal=True),
        auto_refresh=False,
        get_time=progress.clock,
        redirect_stdout=False,
        redirect_stderr=False,
    )
