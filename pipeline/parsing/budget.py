"""A per-input time budget: parsing one input that runs past it is recorded as `too_slow` (BadInputError), and
the caller carries on with its other inputs.

    with parse_budget(settings.parse_budget, origin):
        batch = stories_from_bytes(...)        # whatever parser runs inside

In the main thread the budget is CPU time: an ITIMER_PROF interval timer whose SIGPROF handler raises inside
whatever is running, even one long regular-expression search (CPython's `re` checks for signals). Neither
SIGALRM nor ITIMER_REAL is touched: Airflow's execution_timeout owns those in a task process. ITIMER_PROF
counts the CPU time of the whole process, so concurrent threads (fetches) draw on it too.

Signals reach only the main thread. Elsewhere the budget is wall-clock time: a watchdog timer raises the
exception in the parsing thread (PyThreadState_SetAsyncExc), which interrupts Python code but not a single
long C call. The project's callers all parse in a main thread (`wirefeed run` fetches in threads and parses
in its main thread; Airflow tasks and backfill workers are processes of their own).
"""

from __future__ import annotations

import ctypes
import math
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from pipeline.errors import BadInputError

_active = threading.local()  # .depth: budgets open in this thread (an inner one defers to the outer)


class _Expired(BaseException):
    """Raised inside the parser when the budget runs out. A BaseException, so that a parser's own
    `except Exception` (feedparser has several) cannot swallow it."""


@contextmanager
def parse_budget(seconds: float | None, origin: str = "") -> Iterator[None]:
    """Run the block within `seconds` (None or 0: no budget); BadInputError('too_slow') past it."""
    depth = getattr(_active, "depth", 0)
    if not seconds or seconds <= 0 or math.isinf(seconds) or depth:
        yield
        return
    in_main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    timer = _cpu_timer(seconds) if in_main else _watchdog(seconds)
    _active.depth = depth + 1
    try:
        with timer, _quiet_when_lost():
            yield
    except _Expired:
        clock = "CPU" if in_main else "wall-clock"
        raise BadInputError(
            "too_slow",
            f"parsing {origin or 'the input'} took more than its budget of {seconds:g} {clock} seconds",
            budget_seconds=seconds,
        ) from None
    finally:
        _active.depth = depth


@contextmanager
def _quiet_when_lost() -> Iterator[None]:
    """An expiry raised where Python cannot pass it on (a weakref callback, a __del__) is reported through
    sys.unraisablehook as 'Exception ignored in ...': no traceback on stderr for it, the timer fires again."""
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, _Expired):
            previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


# --- main thread: a CPU-time interval timer ---------------------------------------------------------------

_RETRY_SECONDS = 0.05  # after the budget, the timer fires again this often until the block has stopped
_armed = threading.Event()  # set while a main-thread budget runs
_fired = threading.Event()  # the budget ran out (even if the exception was swallowed somewhere)


def _on_sigprof(signum: int, frame: FrameType | None) -> None:
    if _armed.is_set():
        _fired.set()
        raise _Expired


@contextmanager
def _cpu_timer(seconds: float) -> Iterator[None]:
    """The exception may land where Python swallows it (a weakref callback, a __del__, a bare except): the
    timer keeps firing every _RETRY_SECONDS until the block stops, and a block that still finished after
    the budget ran out counts as too slow (its result may be incomplete)."""
    previous = signal.signal(signal.SIGPROF, _on_sigprof)
    _fired.clear()
    _armed.set()
    signal.setitimer(signal.ITIMER_PROF, seconds, _RETRY_SECONDS)
    try:
        yield
    finally:
        _disarm()
        # A SIGPROF already delivered must still find an (inert) Python handler: the default action of
        # SIGPROF ends the process. So ours stays unless somebody else had installed theirs.
        if callable(previous) and previous is not _on_sigprof:
            signal.signal(signal.SIGPROF, previous)
    if _fired.is_set():
        raise _Expired


def _disarm() -> None:
    """Stop the timer; a last firing during this is caught and the stop retried (the handler raises only
    while _armed is set, and that is cleared first)."""
    while True:
        try:
            _armed.clear()
            signal.setitimer(signal.ITIMER_PROF, 0)
            return
        except _Expired:
            continue


# --- other threads: a wall-clock watchdog -----------------------------------------------------------------


def _raise_in(thread_id: int, exc: type[BaseException] | None) -> None:
    """Schedule `exc` in the thread (None: withdraw a scheduled one)."""
    target = ctypes.py_object(exc) if exc is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)


@contextmanager
def _watchdog(seconds: float) -> Iterator[None]:
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"running": True, "fired": False}

    def expire() -> None:
        with lock:
            if state["running"]:
                state["fired"] = True
                _raise_in(target, _Expired)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["running"] = False
            if state["fired"]:
                _raise_in(target, None)  # withdrawn if not raised yet
        timer.cancel()
    if state["fired"]:  # the block finished after the budget ran out: its result may be incomplete
        raise _Expired
