"""The staging zone: per-feed Parquet batches that the mapped fetch tasks hand to the landing task.

`_staging/<job>/<interval label>/<feed_id>.parquet`, outside stories/, removed by the landing that consumed
them once its manifest is written (pipeline.lake.landing.land_staged). A batch left after that (a crash
between the manifest and the removal) is reported by `wirefeed validate` as staging_leftover and removed by
the interval's next landing.
"""

from __future__ import annotations

import logging

from pipeline.jobs.intervals import Interval
from pipeline.lake.store import Lake

log = logging.getLogger(__name__)

STAGING_PREFIX = "_staging/"


def staging_key(interval: Interval, feed_id: str) -> str:
    return f"{staging_prefix(interval)}{feed_id}.parquet"


def staging_prefix(interval: Interval) -> str:
    return f"{STAGING_PREFIX}{interval.job}/{interval.label}/"


def remove_staged(lake: Lake, interval: Interval) -> int:
    """Delete every staged batch of the interval (after its landing); the number deleted."""
    staged = lake.list(staging_prefix(interval))
    for obj in staged:
        lake.delete(obj.key)
    if staged:
        log.info("removed %d staged batches of %s/%s", len(staged), interval.job, interval.label)
    return len(staged)


def staged_batches(lake: Lake) -> list[tuple[str, str, str]]:
    """(key, job, interval label) of every staged batch in the lake."""
    found = []
    for obj in lake.list(STAGING_PREFIX):
        job, _, rest = obj.key[len(STAGING_PREFIX) :].partition("/")
        found.append((obj.key, job, rest.rpartition("/")[0]))
    return found
