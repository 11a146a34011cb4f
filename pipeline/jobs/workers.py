"""Worker processes for the daily run and backfills."""

from __future__ import annotations

import gc
import importlib
import multiprocessing
import threading
from multiprocessing.context import BaseContext


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
