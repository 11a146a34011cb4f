"""Compaction: rewrite the committed objects of each partition day into one file, exactly once.

A daily run for day D writes into the partitions of the days its stories were published (an undated story
into its fetch day), so a partition collects one small file per run that touched it. `compact()` rewrites
each partition dt in a range that holds more than one committed object (pipeline.lake.files):

1. read them (sha256 checked against their manifests), check every story version (story_id, content_hash)
   is there once, sort by published_at, write `stories/dt=D/compact-D-<run>.parquet` and read it back;
2. write `_manifests/compact/D.json` naming it, with source_info.compaction = {pending: true, replaces:
   [{manifest, key, sha256, rows}]}: the commit point. From here `wirefeed files` lists the new file instead
   of the ones it replaced;
3. finish: drop each replaced object from its manifest (editing the JSON, so every other field stays) and
   record it there under "compacted", delete the replaced files, then mark the compaction done.

The set of story versions, and so any key index, never changes. A crash before 2 leaves an unnamed file
(an orphan that validate reports and the next compaction of that day removes); a crash after 2 leaves a
pending compaction, which the next `compact()` of any range finishes first. Compaction is a writer like a
landing: run it when no landing runs (in Airflow, in the one-slot wirefeed_s3 pool).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from pipeline.errors import FatalError
from pipeline.jobs.intervals import day_range
from pipeline.lake.files import (
    COMPACTION_INFO,
    CommittedObject,
    committed_objects,
    pending_compaction,
    read_manifests,
)
from pipeline.lake.landing import (
    COUNT_KEYS,
    STORIES_PREFIX,
    Manifest,
    _write_verified,
    manifest_key,
)
from pipeline.lake.parquet import parquet_bytes, read_table
from pipeline.lake.store import Lake, sha256_hex
from pipeline.schema import arrow_schema

log = logging.getLogger(__name__)

JOB = "compact"


@dataclass
class CompactionReport:
    days: list[dict[str, Any]] = field(default_factory=list)  # {dt, files, rows, key} per rewritten day
    unchanged: int = 0  # days in range with at most one committed object
    finished: list[str] = field(default_factory=list)  # earlier compactions this run finished
    removed_orphans: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "unchanged": self.unchanged,
            "finished": self.finished,
            "removed_orphans": self.removed_orphans,
        }


def compact(lake: Lake, date_from: date | str, date_to: date | str) -> CompactionReport:
    """Compact every partition dt in [date_from, date_to] (inclusive) to one file."""
    days = day_range(date_from, date_to)
    report = CompactionReport()
    manifests = read_manifests(lake)
    for key, manifest in sorted(manifests.items()):
        if pending_compaction(manifest) is not None:
            finish(lake, key)
            report.finished.append(key)
    if report.finished:
        manifests = read_manifests(lake)
    committed = committed_objects(lake, days[0], days[-1], manifests=manifests)
    by_day: dict[str, list[CommittedObject]] = defaultdict(list)
    for obj in committed:
        by_day[obj.dt].append(obj)
    report.removed_orphans = _remove_compaction_orphans(lake, days, committed)
    for day in days:
        objects = by_day.get(day.isoformat(), [])
        if len(objects) <= 1:
            report.unchanged += 1
            continue
        key = compact_day(lake, day, objects)
        rows = sum(o.rows for o in objects)
        report.days.append({"dt": day.isoformat(), "files": len(objects), "rows": rows, "key": key})
    return report


def compact_day(lake: Lake, day: date, objects: list[CommittedObject]) -> str:
    """Rewrite one day's committed objects into one file, commit it, finish; the new object's key."""
    table = _read_checked(lake, day, objects)
    run_id = uuid.uuid4().hex
    key = f"{STORIES_PREFIX}dt={day.isoformat()}/{JOB}-{day.isoformat()}-{run_id[:12]}.parquet"
    entry = _write_verified(lake, key, day, table.num_rows, parquet_bytes(table))
    this = manifest_key(JOB, day.isoformat())
    replaces = [{"manifest": o.manifest, "key": o.key, "sha256": o.sha256, "rows": o.rows} for o in objects]
    manifest = Manifest(
        job=JOB,
        interval_start=_midnight(day).isoformat(),
        interval_end=_midnight(day + timedelta(days=1)).isoformat(),
        label=day.isoformat(),
        run_id=run_id,
        created_at=datetime.now(UTC).isoformat(),
        taxonomy_version=",".join(sorted({v for v in table.column("taxonomy_version").to_pylist() if v})),
        counts={**dict.fromkeys(COUNT_KEYS, 0), "input": table.num_rows, "kept": table.num_rows},
        objects=[entry],
        topics=dict(
            sorted(Counter(t for ts in table.column("topics").to_pylist() for t in ts or []).items())
        ),
        source_info={COMPACTION_INFO: {"pending": True, "replaces": replaces}},
    )
    lake.put(this, manifest.to_json(), "application/json")  # the commit point
    log.info("compacted dt=%s: %d files, %d rows -> %s", day, len(objects), table.num_rows, key)
    finish(lake, this)
    return key


def finish(lake: Lake, compaction_key: str) -> None:
    """Finish a committed compaction: drop what it replaced from the other manifests, delete the replaced
    files, mark it done. Every step may be repeated after a crash."""
    doc = _read_json(lake, compaction_key)
    info = doc["source_info"][COMPACTION_INFO]
    for item in info["replaces"]:
        if item["manifest"] != compaction_key:  # an earlier compaction's file: its manifest was replaced
            _drop_from_manifest(lake, item, compaction_key)
        stored = lake.stat(item["key"])
        # delete only the bytes that were compacted: a later landing may have written the same key anew
        if stored is not None and (stored.sha256 or sha256_hex(lake.get(item["key"]))) == item["sha256"]:
            lake.delete(item["key"])
    info["pending"] = False
    lake.put(compaction_key, _dump(doc), "application/json")


def _drop_from_manifest(lake: Lake, item: Mapping[str, Any], compaction_key: str) -> None:
    if not lake.exists(item["manifest"]):
        return  # retracted by a rerun of its interval since: nothing names the object any more
    doc = _read_json(lake, item["manifest"])
    kept = [o for o in doc["objects"] if (o["key"], o["sha256"]) != (item["key"], item["sha256"])]
    if len(kept) == len(doc["objects"]):
        return  # done before a crash, or the interval was landed again since
    gone = [o for o in doc["objects"] if o not in kept]
    doc["objects"] = kept
    doc.setdefault("compacted", []).extend({**o, "into": compaction_key} for o in gone)
    lake.put(item["manifest"], _dump(doc), "application/json")


def _read_checked(lake: Lake, day: date, objects: list[CommittedObject]) -> pa.Table:
    """The rows of a day's objects as one table sorted by published_at, refusing anything validate would
    flag: a changed file, another schema, a story version held twice."""
    tables = []
    for obj in objects:
        data = lake.get(obj.key)
        if sha256_hex(data) != obj.sha256:
            raise FatalError(f"{obj.key} differs from its manifest; run wirefeed validate", key=obj.key)
        table = read_table(data)
        if not table.schema.equals(arrow_schema(), check_metadata=False):
            raise FatalError(f"{obj.key} does not have the story schema; run wirefeed validate", key=obj.key)
        tables.append(table)
    table = pa.concat_tables(tables)
    versions = Counter(
        zip(table.column("story_id").to_pylist(), table.column("content_hash").to_pylist(), strict=True)
    )
    twice = [f"{sid} {h}" for (sid, h), n in versions.items() if n > 1]
    if twice:
        raise FatalError(
            f"dt={day} holds story versions more than once ({', '.join(twice[:3])}); run wirefeed validate",
            day=day.isoformat(),
        )
    return table.sort_by(
        [("published_at", "ascending"), ("story_id", "ascending"), ("content_hash", "ascending")]
    )


def _remove_compaction_orphans(lake: Lake, days: list[date], committed: list[CommittedObject]) -> list[str]:
    """Compacted files of these days that no manifest names (a compaction that crashed before its commit).
    Each goes once every story version in it is checked to be in the day's committed files."""
    named = {o.key for o in committed}
    wanted = {f"{STORIES_PREFIX}dt={d.isoformat()}/" for d in days}
    removed = []
    for obj in lake.list(STORIES_PREFIX):
        folder, _, name = obj.key.rpartition("/")
        if obj.key in named or folder + "/" not in wanted or not name.startswith(f"{JOB}-"):
            continue
        day = folder.rpartition("dt=")[2]
        held: set[tuple[str, str]] = set()
        for other in committed:
            if other.dt == day:
                held |= _versions(lake, other.key)
        try:
            redundant = _versions(lake, obj.key) <= held
        except (pa.ArrowException, OSError) as exc:
            log.warning("keeping %s: unreadable (%s)", obj.key, exc)
            continue
        if not redundant:
            log.warning("keeping %s: it holds story versions no manifest names", obj.key)
            continue
        lake.delete(obj.key)
        removed.append(obj.key)
        log.info("removed %s, left by an interrupted compaction", obj.key)
    return removed


def _versions(lake: Lake, key: str) -> set[tuple[str, str]]:
    table = read_table(lake.get(key), columns=["story_id", "content_hash"])
    ids, hashes = table.column("story_id").to_pylist(), table.column("content_hash").to_pylist()
    return {(str(i), str(h)) for i, h in zip(ids, hashes, strict=True)}


def _read_json(lake: Lake, key: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(lake.get(key))
    return doc


def _dump(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
