"""Which raw bodies' stories are in the lake already, so a feed that serves the same body again (a 304, or
an unchanged 200) is not parsed twice.

Two proofs, both written only after a landing's manifest (so a crash before it only costs a re-parse):
- the interval's manifest itself: it lists every feed whose staged batch it landed, with the batch's raw
  key. A feed's state records the manifest key of the interval that staged its raw body (`staged_in`), so
  a run reads each such manifest once (for all its feeds) instead of asking about every body;
- the body's marker `_state/landed/<raw key>.json` (`mark_landed`), written after the manifest. It stays
  true when a later attempt of the interval rewrites the manifest without that feed's batch (a rerun whose
  304s were not parsed again keeps the earlier stories), and it serves states written before `staged_in`.
A body neither proves landed is parsed and staged again.
"""

from __future__ import annotations

import json
import threading

from pipeline.lake.keyindex import io_map
from pipeline.lake.landing import Manifest, read_manifest_if_exists
from pipeline.lake.store import Lake
from pipeline.sources.state import FeedState

LANDED_PREFIX = "_state/landed/"


def landed_key(raw_key: str) -> str:
    """Marker that the stories of this raw body are in the lake (named by a manifest)."""
    return f"{LANDED_PREFIX}{raw_key}.json"


def mark_landed(lake: Lake, manifest: Manifest) -> None:
    """After a landing: mark the raw bodies whose stories it landed. Written after the manifest."""
    doc = json.dumps({"manifest": manifest.key}).encode()
    keys = sorted({raw_key for _, raw_key in staged_bodies(manifest)})
    io_map(lambda k: lake.put(landed_key(k), doc, "application/json"), keys)


def staged_bodies(manifest: Manifest | None) -> set[tuple[str, str]]:
    """(feed_id, raw_key) of every feed whose staged batch this manifest landed."""
    feeds = manifest.feeds if manifest is not None else []
    return {(f["feed_id"], f["raw_key"]) for f in feeds if f.get("raw_key") and f.get("staged_uri")}


class LandedBodies:
    """Answers "did the stories of this feed's last raw body land?" for one run's feeds (any thread): from
    the manifest the state names (read once per run and manifest), else from the body's marker."""

    def __init__(self, lake: Lake) -> None:
        self._lake = lake
        self._lock = threading.Lock()
        self._staged: dict[str, set[tuple[str, str]]] = {}  # manifest key -> staged_bodies(manifest)

    def landed(self, state: FeedState) -> bool:
        if state.raw_key is None:
            return False
        if state.staged_in and (state.feed_id, state.raw_key) in self._landed_by(state.staged_in):
            return True
        return self._lake.exists(landed_key(state.raw_key))

    def _landed_by(self, manifest_key: str) -> set[tuple[str, str]]:
        with self._lock:  # the first feed to ask reads it; the others wait for that one read
            if manifest_key not in self._staged:
                self._staged[manifest_key] = staged_bodies(read_manifest_if_exists(self._lake, manifest_key))
            return self._staged[manifest_key]
