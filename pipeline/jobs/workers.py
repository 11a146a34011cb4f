"""Worker processes for the daily run and backfills."""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext


def worker_context(*preload: str) -> BaseContext:
    """forkserver: workers fork from a server process that imported the `preload` modules once.
    spawn would import them again in every worker; plain fork would copy a parent that may hold threads."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context
