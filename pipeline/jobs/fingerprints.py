"""What a backfill day read from its archive: the day's listing (every input object with its size and
version, i.e. S3 ETag or local mtime) and its fingerprint, kept in the day's manifest (`source_info.listing`).

A day is done only for the archive content it saw: a rerun skips the day when the listing's digest is
unchanged, and otherwise reads only the inputs that are new or changed (landing keeps what the day's earlier
attempt landed, so the rerun adds the difference, exactly once). A manifest without a listing (written
before listings existed) never counts as unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pipeline.config import Settings
from pipeline.lake.landing import Manifest
from pipeline.lake.store import ObjectInfo, open_lake
from pipeline.sources.archive import Planned, check_layout, list_archive, select_inputs

# One listing entry: [object URI, size, version, layout]. The URI names the archive too, so the same keys
# under another archive are other inputs.
Entry = list[Any]


@dataclass
class DayPlan:
    """One day's inputs (in archive order) and the listing entries of each (two for a raw-zone body:
    the body and its metadata)."""

    day: date
    archive: str
    planned: list[Planned] = field(default_factory=list)
    entries: dict[str, list[Entry]] = field(default_factory=dict)  # Planned.key -> its entries

    @property
    def listing(self) -> dict[str, Any]:
        """JSON-able: {"archive", "digest", "inputs": [entry, ...]} (entries sorted)."""
        inputs = sorted(e for p in self.planned for e in self.entries[p.key])
        digest = hashlib.sha256(json.dumps(inputs, separators=(",", ":")).encode()).hexdigest()
        return {"archive": self.archive, "digest": digest, "inputs": inputs}

    def to_read(self, previous: Mapping[str, Any] | None, *, force: bool = False) -> list[Planned] | None:
        """The inputs a run must read: all of them without an earlier listing (or with `force`); None when
        the listing is unchanged; else only those with an entry the earlier listing lacks."""
        if force or previous is None:
            return list(self.planned)
        if previous.get("digest") == self.listing["digest"]:
            return None
        seen = {_entry_key(e) for e in previous.get("inputs") or []}
        return [p for p in self.planned if any(_entry_key(e) not in seen for e in self.entries[p.key])]


def plan_days(
    archive: str, days: Iterable[date], layout: str | None = None, *, settings: Settings | None = None
) -> dict[date, DayPlan]:
    """Each day's plan from one listing of the archive (ConfigError when it is empty or missing)."""
    check_layout(layout)
    lake = open_lake(archive, settings or Settings.load())
    objects = list_archive(lake)
    by_key = {o.key: o for o in objects}
    plans = {d: DayPlan(d, lake.uri()) for d in days}
    for day, item in select_inputs(lake, objects, layout):
        entries = [_entry(lake.uri(k), by_key.get(k), item.layout) for k in _listed_keys(item)]
        for target in list(plans) if day is None else [day] if day in plans else []:
            plans[target].planned.append(item)
            plans[target].entries[item.key] = entries
    return plans


def listing_of(manifest: Manifest | None) -> dict[str, Any] | None:
    """The listing a day's manifest recorded, or None (no manifest, or one from before listings)."""
    info = manifest.source_info if manifest is not None else None
    listing = info.get("listing") if isinstance(info, dict) else None
    return listing if isinstance(listing, dict) and listing.get("digest") else None


def _listed_keys(item: Planned) -> list[str]:
    if item.layout == "raw":  # the body and the metadata file that places it on its day
        return [item.key, item.key.removesuffix(".gz") + ".json"]
    return [item.key]


def _entry(uri: str, info: ObjectInfo | None, layout: str) -> Entry:
    if info is None:  # a raw body named by metadata but absent: recorded as missing
        return [uri, -1, "missing", layout]
    return [uri, info.size, info.version or "", layout]


def _entry_key(entry: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in entry) if isinstance(entry, list | tuple) else (str(entry),)
