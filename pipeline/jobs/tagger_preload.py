"""Preloaded for the parse workers of the daily run and of the backfill (pipeline.jobs.workers.worker_context:
imported by the process they fork from, the run's own or a forkserver): builds the default tagger there once,
so every parse worker starts with it instead of building its own (about 0.15 CPU-s each, before its first
body). A tagger that cannot be built is left to the workers,
which report it."""

from __future__ import annotations

import logging

from pipeline.parsing.stories import load_default_tagger

log = logging.getLogger(__name__)

try:
    load_default_tagger()
except Exception as exc:  # the first parse in a worker raises it again, with its own traceback
    log.warning("default tagger not preloaded: %r", exc)
