"""The raw zone: gzip, content-addressed, with metadata; storing twice changes nothing."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from pipeline.errors import FatalError
from pipeline.lake.store import LocalLake
from pipeline.sources.raw import load_raw, store_raw

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
