"""The RSS/Atom fast path against feedparser: every story field equal, or the input goes to feedparser."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bench.differential import compare
from bench.generate import Writer, quirky_atom_feeds, quirky_rss_feeds, rss_feed
from pipeline.parsing import fastfeed


def _files(root: Path) -> list[tuple[str, bytes, dict[str, object]]]:
    return [(str(p), p.read_bytes(), {}) for p in sorted(root.rglob("*")) if p.is_file()]


def _check(name: str, inputs: list[tuple[str, bytes, dict[str, object]]], min_fast: int) -> None:
    result = compare(inputs)
    print(f"\n{result.line(name)}")
    assert result.differences == []
    assert result.agree == result.fast >= min_fast


def test_feedparser_corpus_agrees(shared_dir):
    root = shared_dir / "corpora" / "feedparser-tests"
    if not root.is_dir():
        pytest.skip("../shared/corpora/feedparser-tests is not present")
    _check("feedparser corpus", _files(root), min_fast=150)


def test_saved_feeds_agree(fixtures_dir):
    _check("tests/fixtures", _files(fixtures_dir), min_fast=1)


def test_generated_news_feeds_agree():
    w = Writer(7)
    feeds = [(f"g{i}.xml", rss_feed(w, i, 20, date(2025, 9, 1 + i % 4)), {}) for i in range(20)]
    feeds += [(f"u{i}.xml", d, {"feed_url": "https://ex.com/f.xml"}) for i, (_, d, _) in enumerate(feeds[:5])]
    _check("generated", feeds, min_fast=len(feeds))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quirky_feeds_agree(seed):
    _check(f"quirky seed {seed}", quirky_rss_feeds(seed, 400), min_fast=100)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quirky_atom_feeds_agree(seed):
    _check(f"quirky Atom seed {seed}", quirky_atom_feeds(seed, 400), min_fast=40)


def test_large_input_is_streamed_and_agrees(monkeypatch):
    w = Writer(5)
    data = rss_feed(w, 1, 400, date(2025, 9, 1))
    monkeypatch.setattr(fastfeed, "STREAM_BYTES", len(data) // 4)
    streamed = []
    real = fastfeed._stream_children
    monkeypatch.setattr(fastfeed, "_stream_children", lambda *a: streamed.append(1) or real(*a))
    _check("streamed", [("big.xml", data, {})], min_fast=1)
    assert streamed


@pytest.mark.parametrize(
    "data, content_type",
    [
        (b'<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><item><title>x</title>'
         b"</item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><title>x</title></item></channel></rss>", "text/xml"),
        (b"<rss version='0.91'><channel><item><title>x</title></item></channel></rss>", None),
        (b"<!DOCTYPE rss><rss version='2.0'><channel><item><title>x</title></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><summary>s</summary></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><author>a@b.com (A)</author></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><title>a</title><title>b</title></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><title>x<b>y</b></title></item></channel></rss>", None),
        (b"<rss version='2.0'><channel><item><title>x</item></channel></rss>", None),
        (b"<feed xmlns='http://www.w3.org/2005/Atom'><entry><title type='xhtml'>x</title></entry></feed>",
         None),
        (b"<feed xmlns='http://purl.org/atom/ns#'><entry><title>x</title></entry></feed>", None),
    ],
)  # fmt: skip
def test_fast_path_declines_what_it_cannot_read_exactly(data, content_type):
    assert fastfeed.parse_fast(data, "x", source=None, feed_url=None, content_type=content_type) is None
