"""Worker processes for the daily run and backfills."""

from __future__ import annotations

import ctypes
import gc
import importlib
import logging
import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.context import BaseContext

log = logging.getLogger(__name__)

# glibc mallopt(3) parameters
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
HEAP_PAD = 256 << 20  # freed heap a worker keeps for its next chunk
HEAP_MMAP_THRESHOLD = 32 << 20  # glibc's largest: smaller blocks come from (and go back to) the heap


def worker_context(*preload: str) -> BaseContext:
    """Workers that start with the `preload` modules imported (and what importing them builds, e.g. the
    default tagger). While this process runs no other thread, they are forked from it once it has imported
    them: no second interpreter imports pyarrow, the parsers and the tagger again (about 0.4 CPU-s a run).
    Else they fork from a forkserver that imported them once: a plain fork of a process with threads could
    copy a lock one of them holds. (ProcessPoolExecutor forks all its workers at its first submit, before
    its own thread starts; the caller must start no thread in between.)"""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        for name in preload:
            importlib.import_module(name)
        gc.freeze()  # what the workers inherit: never traversed by their collector, so never copied for it
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off for one bulk step (a day's or a chunk's parse). Such a step allocates millions
    of short-lived, acyclic objects (story dicts, strings) while the batch of the last STORY_BATCH stories
    stays alive, so the collector's generations fill and it traverses them again and again: about 12% of a
    JSON Lines backfill's CPU. Reference counting still frees everything at once; a cycle made in the step
    (none is expected) is found by the first collection after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def retain_freed_heap() -> bool:
    """Make this process keep up to HEAP_PAD of freed heap instead of handing it back to the kernel (glibc
    only; False elsewhere). A parse worker frees most of what a chunk allocated (records, stories, tables)
    and allocates as much again for the next: by default glibc returns the top of the heap at once and maps
    blocks over 128 KiB on their own, so every chunk faults and zeroes its memory anew (a third of a JSON
    Lines backfill's system time). Peak memory is unchanged: only what a chunk already used is kept."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = bool(mallopt(_M_MMAP_THRESHOLD, HEAP_MMAP_THRESHOLD)) and bool(mallopt(_M_TOP_PAD, HEAP_PAD))
    if not ok:
        log.debug("mallopt refused the heap settings")
    return ok
