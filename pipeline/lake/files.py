"""The committed lake: the story objects the manifests name, which is what readers should read.

An object is committed when a manifest names it, unless a compaction that is still being finished lists it
among the objects it replaced (pipeline.lake.compact): its rows are then in the compacted file, which that
compaction's manifest names. Files under stories/ that no manifest names (orphans of a crashed landing or
compaction) are never listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from pipeline.lake.landing import MANIFESTS_PREFIX, Manifest, read_manifest
from pipeline.lake.store import Lake

COMPACTION_INFO = "compaction"  # the key of a compaction manifest's source_info that describes it


@dataclass(frozen=True)
class CommittedObject:
    key: str
    dt: str
    rows: int
    size: int
    sha256: str
    manifest: str

    def to_dict(self, lake: Lake) -> dict[str, Any]:
        return {"uri": lake.uri(self.key), **asdict(self)}


def manifest_keys(lake: Lake) -> list[str]:
    return [o.key for o in lake.list(MANIFESTS_PREFIX) if o.key.endswith(".json")]


def read_manifests(lake: Lake) -> dict[str, Manifest]:
    """Every manifest of the lake by key; FatalError naming the first one that is malformed."""
    return {key: read_manifest(lake, key) for key in manifest_keys(lake)}


def pending_compaction(manifest: Manifest) -> list[dict[str, Any]] | None:
    """The objects a compaction manifest replaced while it is not finished; None for any other manifest."""
    info = (manifest.source_info or {}).get(COMPACTION_INFO)
    if not isinstance(info, dict) or not info.get("pending"):
        return None
    return [dict(r) for r in info.get("replaces", [])]


def replaced_objects(manifests: Iterable[Manifest]) -> set[tuple[str, str, str]]:
    """(manifest key, object key, sha256) of every object an unfinished compaction replaced."""
    return {
        (str(r["manifest"]), str(r["key"]), str(r["sha256"]))
        for m in manifests
        for r in pending_compaction(m) or []
    }


def committed_objects(
    lake: Lake,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    manifests: Mapping[str, Manifest] | None = None,
) -> list[CommittedObject]:
    """The committed story objects whose partition dt is within [date_from, date_to] (inclusive, None =
    open), sorted by dt then key."""
    manifests = read_manifests(lake) if manifests is None else manifests
    replaced = replaced_objects(manifests.values())
    found = []
    for manifest_key, manifest in manifests.items():
        for obj in manifest.objects:
            if (manifest_key, obj["key"], obj["sha256"]) in replaced:
                continue
            day = date.fromisoformat(str(obj["dt"]))
            if (date_from is None or day >= date_from) and (date_to is None or day <= date_to):
                found.append(
                    CommittedObject(
                        str(obj["key"]),
                        str(obj["dt"]),
                        int(obj["rows"]),
                        int(obj["size"]),
                        str(obj["sha256"]),
                        manifest_key,
                    )
                )
    return sorted(found, key=lambda o: (o.dt, o.key))
