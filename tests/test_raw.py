"""The raw zone: gzip, content-addressed, with metadata; storing twice changes nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from pipeline.errors import FatalError
from pipeline.lake.store import LocalLake
from pipeline.sources.raw import load_raw, meta_key, store_raw
from tests.test_landed import CountingLake

META = {
    "status": 200,
    "etag": '"v1"',
    "last_modified": None,
    "final_url": "http://127.0.0.1/a.xml",
    "feed_id": "a",
    "fetched_at": "2026-11-25T06:00:00+00:00",
    "content_type": "application/rss+xml",
}


def test_store_is_content_addressed_with_metadata(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    body = b"<rss>hello</rss>"
    sha = hashlib.sha256(body).hexdigest()
    key = store_raw(lake, body, META)
    assert key == f"raw/{sha[:2]}/{sha}.gz"
    assert gzip.decompress(lake.get(key)) == body
    meta = json.loads(lake.get(f"raw/{sha[:2]}/{sha}.json"))
    assert meta["feed_id"] == "a" and meta["sha256"] == sha and meta["size"] == len(body)
    assert load_raw(lake, key) == (body, meta)


def test_storing_again_keeps_the_first_metadata(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    key = store_raw(lake, b"same", META)
    before = {o.key: lake.get(o.key) for o in lake.list("raw/")}
    assert store_raw(lake, b"same", {**META, "feed_id": "b"}) == key
    assert {o.key: lake.get(o.key) for o in lake.list("raw/")} == before


def test_missing_metadata_and_tampering_are_refused(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    with pytest.raises(FatalError):
        store_raw(lake, b"x", {"feed_id": "a"})
    key = store_raw(lake, b"original", META)
    lake.put(key, gzip.compress(b"tampered"))
    with pytest.raises(FatalError):
        load_raw(lake, key)


def test_a_new_body_is_written_without_asking_and_the_last_one_is_not_uploaded_again(tmp_path: Path) -> None:
    lake = CountingLake(tmp_path)
    key = store_raw(lake, b"new body", META, last_key="raw/00/older.gz")
    assert lake.asked == [] and gzip.decompress(lake.get(key)) == b"new body"  # no exists() round trip
    lake.asked.clear()
    written: list[str] = []
    lake.put_new = lambda k, *a, **kw: written.append(k) or False  # type: ignore[method-assign]
    assert store_raw(lake, b"new body", {**META, "feed_id": "b"}, last_key=key) == key
    assert lake.asked == [key] and written == []  # the feed's last body: asked once, nothing sent
    assert store_raw(lake, b"new body", {**META, "feed_id": "b"}) == key
    assert written == [meta_key(key), key]  # another feed's copy: create-only writes, refused by the lake
    assert json.loads(lake.get(meta_key(key)))["feed_id"] == "a"
