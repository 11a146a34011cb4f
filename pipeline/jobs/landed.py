"""Which raw bodies' stories are in the lake already, so a feed that serves the same body again (a 304, or
an unchanged 200) is not parsed twice.

Two proofs, both written only after a landing's manifest (so a crash before it only costs a re-parse):
- a manifest: it lists every feed whose batch it landed (`staged_uri` for a batch staged by an Airflow task;
  `landed_in` = its own key for one `wirefeed run` parsed and landed in one process), with the body's
  `raw_key`, and every feed whose body an earlier attempt of the same interval landed (`landed_in` = its own
  key too, with no stories: a rerun keeps those stories). A feed's state names the manifest that holds its
  body's stories (`FeedState.landed_in`), so a run reads each such manifest once for all its feeds;
- the body's marker `_state/landed/<raw key>.json` (`mark_landed`), written after the manifest and naming
  it. It answers when the state names no manifest or one that does not list the body, and its manifest is
  remembered for the next run. A state names the manifest of the interval that parsed its body; that stops
  listing the body only when a rerun of the interval replaces it without it (the feed failed or was skipped
  in the rerun, whose objects still keep the body's stories), so the rerun writes markers for exactly those
  bodies; a first landing writes none. (Markers of earlier versions, one per landed body, still answer.)
A body that neither proves landed is parsed (and landed) again.
"""

from __future__ import annotations

import json
import threading

from pipeline.lake.keyindex import io_map
from pipeline.lake.landing import Manifest, read_manifest_if_exists
from pipeline.lake.store import Lake, NotFoundError
from pipeline.sources.state import FeedState

LANDED_PREFIX = "_state/landed/"
UNNAMED = ""  # landed_in() for a body whose marker exists but names no manifest (a damaged marker)


def landed_key(raw_key: str) -> str:
    """Marker that the stories of this raw body are in the lake (named by a manifest)."""
    return f"{LANDED_PREFIX}{raw_key}.json"


def mark_landed(lake: Lake, manifest: Manifest, replaced: Manifest | None) -> None:
    """After a landing (written after its manifest): mark the bodies that `replaced` (the manifest of an
    earlier attempt of the same interval, read before the landing) proved landed and `manifest` does not,
    naming `manifest`, whose objects keep their stories (a rerun never drops a story)."""
    if replaced is None:
        return
    doc = json.dumps({"manifest": manifest.key}).encode()
    keys = sorted({raw for _, raw in landed_bodies(replaced) - landed_bodies(manifest)})
    io_map(lambda k: lake.put(landed_key(k), doc, "application/json"), keys, parallel=lake.parallel_io)


def landed_bodies(manifest: Manifest | None) -> set[tuple[str, str]]:
    """(feed_id, raw_key) of every body whose stories the manifest's objects hold: the staged batches it
    landed and the bodies an earlier attempt of its interval landed."""
    if manifest is None:
        return set()
    return {
        (f["feed_id"], f["raw_key"])
        for f in manifest.feeds
        if f.get("raw_key") and (f.get("staged_uri") or f.get("landed_in") == manifest.key)
    }


class LandedBodies:
    """Answers "where did the stories of this feed's last raw body land?" for one run's feeds (any thread):
    the manifest the state names (each read once per run), else the body's marker."""

    def __init__(self, lake: Lake) -> None:
        self._lake = lake
        self._lock = threading.Lock()
        self._bodies: dict[str, set[tuple[str, str]]] = {}  # manifest key -> landed_bodies(manifest)

    def landed_in(self, state: FeedState) -> str | None:
        """The key of the manifest whose objects hold the stories of state.raw_key (UNNAMED when only a
        marker naming none says they landed), None when they did not land."""
        if state.raw_key is None:
            return None
        if state.landed_in and (state.feed_id, state.raw_key) in self._landed_by(state.landed_in):
            return state.landed_in
        try:
            marker = self._lake.get(landed_key(state.raw_key))
        except NotFoundError:
            return None
        try:
            named = json.loads(marker).get("manifest")
        except (ValueError, AttributeError):
            named = None
        return named if isinstance(named, str) and named else UNNAMED

    def _landed_by(self, manifest_key: str) -> set[tuple[str, str]]:
        with self._lock:  # the first feed to ask reads it; the others wait for that one read
            if manifest_key not in self._bodies:
                self._bodies[manifest_key] = landed_bodies(read_manifest_if_exists(self._lake, manifest_key))
            return self._bodies[manifest_key]
