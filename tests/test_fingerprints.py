"""pipeline.jobs.fingerprints: a day's archive listing, its digest, and which inputs a rerun must read."""

import os
from datetime import date
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError
from pipeline.jobs.fingerprints import listing_of, plan_days
from pipeline.lake.landing import Manifest
from pipeline.lake.store import LocalLake
from pipeline.sources.raw import store_raw
from tests.test_archive import put, rss, wire

SETTINGS = Settings.load(env={})
D1, D2 = date(2026, 11, 24), date(2026, 11, 25)


def keys(planned: list) -> list[str]:  # type: ignore[type-arg]
    return sorted(p.key for p in planned)


def test_each_day_lists_its_inputs_with_size_and_version(tmp_path: Path) -> None:
    put(tmp_path, "2026/11/24/a.txt", wire("Alice"))
    put(tmp_path, "2026/11/25/b.xml", rss(("b", "Beta", "Tue, 25 Nov 2026 09:00:00 GMT")))
    put(
        tmp_path, "exports/desk.jsonl", b'{"title": "T", "date": "2026-11-25T01:00Z"}\n'
    )  # undated: every day
    plans = plan_days(str(tmp_path), [D1, D2], settings=SETTINGS)
    assert keys(plans[D1].planned) == ["2026/11/24/a.txt", "exports/desk.jsonl"]
    listing = plans[D2].listing
    assert listing["archive"] == LocalLake(tmp_path).uri() and len(listing["digest"]) == 64
    (entry,) = [e for e in listing["inputs"] if e[0].endswith("b.xml")]
    uri, size, version, layout = entry
    assert uri == LocalLake(tmp_path).uri("2026/11/25/b.xml")
    assert size == (tmp_path / "2026/11/25/b.xml").stat().st_size and version and layout == "snapshots"
    assert plans[D1].listing["digest"] != listing["digest"]


def test_a_rerun_reads_nothing_when_unchanged_and_only_the_difference_otherwise(tmp_path: Path) -> None:
    put(tmp_path, "2026/11/25/a.txt", wire("Alice"))
    put(tmp_path, "2026/11/25/b.txt", wire("Bob"))
    first = plan_days(str(tmp_path), [D2], settings=SETTINGS)[D2]
    assert keys(first.to_read(None) or []) == ["2026/11/25/a.txt", "2026/11/25/b.txt"]
    seen = first.listing
    assert plan_days(str(tmp_path), [D2], settings=SETTINGS)[D2].to_read(seen) is None
    assert keys(first.to_read(seen, force=True) or []) == ["2026/11/25/a.txt", "2026/11/25/b.txt"]

    put(tmp_path, "2026/11/25/c.txt", wire("Carol"))  # added
    path = tmp_path / "2026/11/25/a.txt"
    path.write_bytes(wire("Alice, edited"))  # rewritten: new size and mtime
    again = plan_days(str(tmp_path), [D2], settings=SETTINGS)[D2]
    assert keys(again.to_read(seen) or []) == ["2026/11/25/a.txt", "2026/11/25/c.txt"]

    # the same size with a new modification time is a change too
    now = again.listing
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert keys(plan_days(str(tmp_path), [D2], settings=SETTINGS)[D2].to_read(now) or []) == [
        "2026/11/25/a.txt"
    ]
    # a removed input changes the digest but leaves nothing to read
    latest = plan_days(str(tmp_path), [D2], settings=SETTINGS)[D2].listing
    (tmp_path / "2026/11/25/c.txt").unlink()
    assert plan_days(str(tmp_path), [D2], settings=SETTINGS)[D2].to_read(latest) == []


def test_another_archive_or_layout_is_another_listing(tmp_path: Path) -> None:
    for root in ("one", "two"):
        put(tmp_path / root, "2026/11/25/a.txt", wire("Alice"))
    seen = plan_days(str(tmp_path / "one"), [D2], settings=SETTINGS)[D2].listing
    other = plan_days(str(tmp_path / "two"), [D2], settings=SETTINGS)[D2]
    assert keys(other.to_read(seen) or []) == ["2026/11/25/a.txt"]
    # a forced layout reads the same objects differently: they are read again
    forced = plan_days(str(tmp_path / "one"), [D2], "jsonl", settings=SETTINGS)[D2]
    assert keys(forced.to_read(seen) or []) == ["2026/11/25/a.txt"]


def test_a_raw_body_is_listed_with_its_metadata(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    meta = {"feed_id": "f", "fetched_at": "2026-11-25T10:00:00+00:00", "status": 200, "etag": None}
    meta |= {"last_modified": None, "final_url": "https://f.example/", "content_type": "application/xml"}
    key = store_raw(lake, rss(("a", "A", "Tue, 25 Nov 2026 09:00:00 GMT")), meta)
    plan = plan_days(str(tmp_path), [D2], settings=SETTINGS)[D2]
    assert [p.key for p in plan.planned] == [key]
    assert sorted(e[0].rsplit(".", 1)[-1] for e in plan.listing["inputs"]) == ["gz", "json"]


def test_listing_of_a_manifest() -> None:
    old = Manifest("backfill", "a", "b", "2026-11-25", "r", "c", source_info={"archive": "/x"})
    assert listing_of(None) is None and listing_of(old) is None  # written before listings: never unchanged
    new = Manifest("backfill", "a", "b", "2026-11-25", "r", "c", source_info={"listing": {"digest": "d"}})
    assert listing_of(new) == {"digest": "d"}


def test_a_missing_archive_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="empty or does not exist"):
        plan_days(str(tmp_path / "typo"), [D2], settings=SETTINGS)
