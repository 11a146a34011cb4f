"""Check a lake: manifests against objects, Parquet against the story schema, duplicates, and what readers
of stories/ would see that is not committed: orphans, unfinished compactions, staged batches left behind.

deep=True (the default) downloads every named object, re-hashes it and reads its schema and key columns.
deep=False only compares existence, size and the sha256 recorded at write time (object metadata), so it
cannot see schema problems or duplicate rows. Temp files of unfinished local writes are reported
(`temp_leftover`) until the next landing removes them. `lake_manifests` counts every manifest of the lake, in
range or not: 0 means an empty (or mistyped) lake, which `wirefeed validate` refuses unless --allow-empty.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import ConfigError, FatalError
from pipeline.jobs.intervals import Interval, parse_day
from pipeline.lake import keyindex
from pipeline.lake.files import pending_compaction, replaced_objects
from pipeline.lake.landing import (
    COUNT_KEYS,
    MANIFESTS_PREFIX,
    STORIES_PREFIX,
    Manifest,
    manifest_key,
    read_manifest,
)
from pipeline.lake.parquet import arrow_reader
from pipeline.lake.staging import staged_batches
from pipeline.lake.store import Lake, NotFoundError, sha256_hex
from pipeline.schema import arrow_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Violation:
    kind: str  # manifest_malformed, missing_object, size_mismatch, checksum_mismatch, schema_mismatch,
    # unreadable_parquet, row_count_mismatch, duplicate_story, orphan_object, compaction_pending,
    # staging_leftover, index_mismatch, temp_leftover
    keys: tuple[str, ...]
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "keys": list(self.keys), "message": self.message}


@dataclass
class ValidationReport:
    manifests: int = 0
    objects: int = 0
    rows: int = 0
    violations: list[Violation] = field(default_factory=list)
    lake_manifests: int = 0  # in the whole lake, whatever the range

    @property
    def ok(self) -> bool:
        return not self.violations

    def add(self, kind: str, keys: list[str] | tuple[str, ...], message: str) -> None:
        self.violations.append(Violation(kind, tuple(keys), message))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "manifests": self.manifests,
            "objects": self.objects,
            "rows": self.rows,
            "lake_manifests": self.lake_manifests,
            "violations": [v.to_dict() for v in self.violations],
        }


def validate(
    lake: Lake, date_from: date | str | None = None, date_to: date | str | None = None, deep: bool = True
) -> ValidationReport:
    """Validate manifests whose interval overlaps [date_from, date_to] (UTC days, inclusive; None = open)."""
    date_from = parse_day(date_from) if isinstance(date_from, str) else date_from
    date_to = parse_day(date_to) if isinstance(date_to, str) else date_to
    if date_from is not None and date_to is not None and date_to < date_from:
        raise ConfigError(
            f"--to {date_to} is before --from {date_from}", date_from=str(date_from), date_to=str(date_to)
        )
    report = ValidationReport()
    named: set[str] = set()  # story keys named by any well-formed manifest, in range or not
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)  # story version -> object keys holding it
    manifests: dict[str, Manifest] = {}
    for info in lake.list(MANIFESTS_PREFIX):
        report.lake_manifests += 1
        manifest = _load(lake, info.key, report)
        if manifest is not None:
            manifests[info.key] = manifest
    replaced = replaced_objects(manifests.values())  # by unfinished compactions: their rows are elsewhere
    for key, manifest in manifests.items():
        named.update(str(o["key"]) for o in manifest.objects)
        if not _overlaps(manifest, date_from, date_to):
            continue
        report.manifests += 1
        _check_compaction(lake, key, manifest, report)
        for obj in manifest.objects:
            if (key, obj["key"], obj["sha256"]) in replaced:
                continue
            report.objects += 1
            report.rows += int(obj["rows"])
            _check_object(lake, obj, report, owners if deep else None)
    for (story_id, content_hash), keys in sorted(owners.items()):
        if len(keys) > 1:
            report.add(
                "duplicate_story", sorted(set(keys)), f"story {story_id} version {content_hash} x{len(keys)}"
            )
    for info in lake.list(STORIES_PREFIX):
        if info.key not in named and _day_in_range(_partition_day(info.key), date_from, date_to):
            report.add("orphan_object", [info.key], "not named by any manifest")
    for key, job, label in staged_batches(lake):
        if manifest_key(job, label) in manifests and _label_in_range(label, date_from, date_to):
            report.add("staging_leftover", [key], f"{job}/{label} has landed; its next landing removes it")
    for key in lake.leftovers():
        report.add("temp_leftover", [key], "temp file of an unfinished write; the next landing removes it")
    if deep and date_from is None and date_to is None and report.ok:
        _check_index(lake, report, set(owners))
    log.info(
        "validated %d manifests, %d objects: %d violations",
        report.manifests,
        report.objects,
        len(report.violations),
    )
    return report


def _check_index(lake: Lake, report: ValidationReport, named: set[tuple[str, str]]) -> None:
    """The key index names exactly the versions the manifests name (judged on an otherwise sound lake,
    when the index exists and no landing is pending; a missing index is rebuilt by the next landing)."""
    head = _read_head(lake)
    if not isinstance(head, dict) or head.get("pending") or head.get("rebuilding"):
        return
    try:
        indexed = keyindex.index_versions(lake, head)
    except ValueError as exc:
        if _read_head(lake) != head:  # a landing replaced the index while it was read: no verdict, as pending
            return
        report.add(
            "index_mismatch",
            [keyindex.INDEX_PREFIX],
            f"the key index cannot be read ({exc}); run `wirefeed validate --repair-index`",
        )
        return
    missing, extra = named - set(indexed), set(indexed) - named
    if missing or extra:
        sample = sorted(f"{sid}/{h}" for sid, h in [*missing, *extra])[:5]
        report.add(
            "index_mismatch",
            [keyindex.INDEX_PREFIX],
            f"{len(missing)} landed versions missing from the key index, {len(extra)} it names that no "
            f"manifest does (e.g. {', '.join(sample)}); run `wirefeed validate --repair-index`",
        )


def _read_head(lake: Lake) -> object:
    """The key index's HEAD as JSON; None when missing or unreadable."""
    try:
        return json.loads(lake.get(keyindex.HEAD_KEY))
    except (NotFoundError, ValueError):
        return None


def _check_compaction(lake: Lake, key: str, manifest: Manifest, report: ValidationReport) -> None:
    """An unfinished compaction: readers of the manifests see the compacted file, but until it is finished
    the files it replaced stay under stories/ too (`wirefeed compact` finishes it first thing)."""
    replaces = pending_compaction(manifest)
    if replaces is None:
        return
    left = sorted(str(r["key"]) for r in replaces if lake.exists(str(r["key"])))
    report.add(
        "compaction_pending",
        [key, *left],
        f"compaction not finished ({len(left)} replaced files still present); rerun wirefeed compact",
    )


def check_interval(lake: Lake, interval: Interval, deep: bool = True) -> ValidationReport:
    """validate() over the UTC days of an interval (what a run that landed the interval checks)."""
    days = interval.days()
    return validate(lake, days[0], days[-1], deep=deep)


def _load(lake: Lake, key: str, report: ValidationReport) -> Manifest | None:
    try:
        manifest = read_manifest(lake, key)
        problem = _manifest_problem(manifest, key)
    except (FatalError, TypeError, ValueError) as exc:
        problem = str(exc)
    if problem:
        report.add("manifest_malformed", [key], problem)
        return None
    return manifest


def _manifest_problem(m: Manifest, key: str) -> str | None:
    """Shape checks beyond 'has the keys': types, counts, object entries, path matches job/label."""
    doc = m.to_dict()  # values as parsed from JSON, not yet trusted to match the annotations
    if key != f"{MANIFESTS_PREFIX}{doc['job']}/{doc['label']}.json":
        return f"path does not match job {doc['job']!r} / label {doc['label']!r}"
    datetime.fromisoformat(doc["interval_start"]), datetime.fromisoformat(doc["interval_end"])  # ValueError
    if not isinstance(doc["counts"], dict) or set(COUNT_KEYS) - set(doc["counts"]):
        return f"counts must have keys {list(COUNT_KEYS)}"
    if not isinstance(doc["objects"], list):
        return "objects must be a list"
    for obj in doc["objects"]:
        if not isinstance(obj, dict) or {"key", "size", "sha256", "rows", "dt"} - set(obj):
            return "each object needs key, size, sha256, rows, dt"
        if not isinstance(obj["size"], int) or not isinstance(obj["rows"], int):
            return f"object {obj['key']!r}: size and rows must be integers"
        if not str(obj["key"]).startswith(STORIES_PREFIX):
            return f"object {obj['key']!r} is outside {STORIES_PREFIX}"
    return None


def _check_object(
    lake: Lake, obj: dict[str, Any], report: ValidationReport, owners: dict[tuple[str, str], list[str]] | None
) -> None:
    key = str(obj["key"])
    if owners is None:
        info = lake.stat(key)
        if info is None:
            report.add("missing_object", [key], "named by a manifest but absent")
        elif info.size != obj["size"]:
            report.add("size_mismatch", [key], f"size {info.size}, manifest says {obj['size']}")
        elif info.sha256 is not None and info.sha256 != obj["sha256"]:
            report.add("checksum_mismatch", [key], "stored sha256 differs from the manifest")
        return
    if not lake.exists(key):
        report.add("missing_object", [key], "named by a manifest but absent")
        return
    data = lake.get(key)
    if len(data) != obj["size"]:
        report.add("size_mismatch", [key], f"size {len(data)}, manifest says {obj['size']}")
    if sha256_hex(data) != obj["sha256"]:
        report.add("checksum_mismatch", [key], "sha256 of the content differs from the manifest")
    try:
        parquet = pq.ParquetFile(arrow_reader(data))
        schema = parquet.schema_arrow
        table = parquet.read(columns=["story_id", "content_hash"])
    except (pa.ArrowException, OSError, KeyError) as exc:
        report.add("unreadable_parquet", [key], f"{type(exc).__name__}: {exc}"[:200])
        return
    if not schema.equals(arrow_schema(), check_metadata=False):
        report.add("schema_mismatch", [key], _schema_diff(schema))
    if table.num_rows != obj["rows"]:
        report.add("row_count_mismatch", [key], f"{table.num_rows} rows, manifest says {obj['rows']}")
    ids, hashes = table.column("story_id").to_pylist(), table.column("content_hash").to_pylist()
    for story_id, content_hash in zip(ids, hashes, strict=True):
        owners[(str(story_id), str(content_hash))].append(key)


def _schema_diff(actual: pa.Schema) -> str:
    expected = arrow_schema()
    diffs = []
    for f in expected:
        idx = actual.get_field_index(f.name)
        if idx < 0:
            diffs.append(f"missing {f.name}")
        elif not actual.field(idx).equals(f):
            diffs.append(f"{f.name}: {actual.field(idx).type} nullable={actual.field(idx).nullable}")
    diffs += [f"extra {n}" for n in actual.names if n not in expected.names]
    return "; ".join(diffs) or "field order differs"


def _overlaps(m: Manifest, first: date | None, last: date | None) -> bool:
    start = datetime.fromisoformat(m.interval_start).astimezone(UTC)
    end = datetime.fromisoformat(m.interval_end).astimezone(UTC)
    if first is not None and end <= datetime(first.year, first.month, first.day, tzinfo=UTC):
        return False
    return last is None or start.date() <= last  # starts before the end of day `last` (no date arithmetic)


def _partition_day(key: str) -> date | None:
    for part in key.split("/"):
        if part.startswith("dt="):
            try:
                return date.fromisoformat(part[3:])
            except ValueError:
                return None
    return None


def _label_in_range(label: str, first: date | None, last: date | None) -> bool:
    try:
        return _day_in_range(date.fromisoformat(label), first, last)
    except ValueError:
        return True  # not a day label: always reported


def _day_in_range(day: date | None, first: date | None, last: date | None) -> bool:
    if day is None:
        return True  # outside the layout: always reported
    return (first is None or day >= first) and (last is None or day <= last)


def report_json(report: ValidationReport) -> str:
    return json.dumps(report.to_dict(), indent=2)
