"""pipeline.jobs.landed: which raw bodies' stories landed, from the manifest a state names or the marker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.jobs.landed import UNNAMED, LandedBodies, landed_bodies, landed_key, mark_landed
from pipeline.lake.landing import Manifest, manifest_key
from pipeline.lake.store import LocalLake
from pipeline.sources.state import FeedState

MANIFEST = manifest_key("daily", "2026-11-25")


class CountingLake(LocalLake):
    """A local lake that records the key of every get and exists (what a round trip to S3 would be)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[str] = []

    def get(self, key: str) -> bytes:
        self.asked.append(key)
        return super().get(key)

    def exists(self, key: str) -> bool:
        self.asked.append(key)
        return super().exists(key)


@pytest.fixture
def lake(tmp_path: Path) -> CountingLake:
    return CountingLake(tmp_path / "lake")


def manifest(*feeds: dict[str, object]) -> Manifest:
    return Manifest(
        job="daily",
        interval_start="2026-11-25T00:00:00+00:00",
        interval_end="2026-11-26T00:00:00+00:00",
        label="2026-11-25",
        run_id="r1",
        created_at="2026-11-26T00:01:00+00:00",
        feeds=list(feeds),
    )


def feed(feed_id: str, raw_key: str, staged: bool = True) -> dict[str, object]:
    return {"feed_id": feed_id, "raw_key": raw_key, "staged_uri": f"s/{feed_id}.parquet" if staged else None}


def write(lake: LocalLake, m: Manifest) -> None:
    lake.put(MANIFEST, m.to_json(), "application/json")


def test_landed_bodies_are_the_staged_batches_and_the_bodies_an_earlier_attempt_landed() -> None:
    m = manifest(
        feed("a", "raw/a"),
        feed("b", "raw/b", staged=False),
        {"feed_id": "c", "raw_key": None},
        {**feed("d", "raw/d", staged=False), "landed_in": MANIFEST},  # a rerun kept them
        {**feed("e", "raw/e", staged=False), "landed_in": manifest_key("daily", "2026-11-24")},  # elsewhere
    )
    assert landed_bodies(m) == {("a", "raw/a"), ("d", "raw/d")} and landed_bodies(None) == set()


def test_a_manifest_named_by_the_states_is_read_once_for_all_feeds_and_no_marker_is_asked(
    lake: CountingLake,
) -> None:
    write(lake, manifest(*(feed(f"f{i}", f"raw/{i}") for i in range(5))))
    landed = LandedBodies(lake)
    lake.asked.clear()
    states = [FeedState(f"f{i}", raw_key=f"raw/{i}", landed_in=MANIFEST) for i in range(5)]
    assert [landed.landed_in(s) for s in states] == [MANIFEST] * 5
    assert lake.asked == [MANIFEST]


def test_without_the_manifests_word_the_marker_decides_and_names_its_manifest(lake: CountingLake) -> None:
    write(lake, manifest(feed("a", "raw/old"), feed("b", "raw/b", staged=False)))
    landed = LandedBodies(lake)
    other_body = FeedState("a", raw_key="raw/new", landed_in=MANIFEST)  # the manifest landed an older one
    not_staged = FeedState("b", raw_key="raw/b", landed_in=MANIFEST)
    no_manifest = FeedState("c", raw_key="raw/c", landed_in=manifest_key("daily", "2026-11-26"))
    old_state = FeedState("d", raw_key="raw/d")  # written before landed_in existed
    states = (other_body, not_staged, no_manifest, old_state)
    assert [landed.landed_in(s) for s in states] == [None] * 4
    for key in ("raw/new", "raw/b", "raw/c"):
        lake.put(landed_key(key), json.dumps({"manifest": "_manifests/daily/2026-11-20.json"}).encode())
    lake.put(landed_key("raw/d"), b"not json")
    named = "_manifests/daily/2026-11-20.json"
    assert [landed.landed_in(s) for s in states] == [named, named, named, UNNAMED]
    assert landed.landed_in(FeedState("e")) is None  # no body at all


def test_mark_landed_marks_only_the_bodies_a_rerun_no_longer_proves(lake: CountingLake) -> None:
    earlier = manifest(
        feed("a", "raw/a"),  # staged, then failed in the rerun
        {**feed("b", "raw/b", staged=False), "landed_in": MANIFEST, "stories": 3},  # parsed by `wirefeed run`
        feed("c", "raw/c"),  # lands again in the rerun
        feed("d", "raw/d"),  # a new body in the rerun
    )
    rerun = manifest(
        {"feed_id": "a", "raw_key": None, "status": "failed"},
        {"feed_id": "b", "raw_key": None, "status": "skipped"},
        {**feed("c", "raw/c", staged=False), "landed_in": MANIFEST, "stories": 0},  # kept
        feed("d", "raw/d2"),
    )
    mark_landed(lake, earlier, None)  # a first landing: the states and the manifest prove every body
    assert lake.list("") == []
    mark_landed(lake, rerun, earlier)
    assert sorted(o.key for o in lake.list("")) == [landed_key(k) for k in ("raw/a", "raw/b", "raw/d")]
    assert json.loads(lake.get(landed_key("raw/a"))) == {"manifest": rerun.key}
