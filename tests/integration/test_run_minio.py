"""The daily run end to end: real MinIO lake, real loopback feed servers, hostile feeds among good ones."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.config import Settings
from pipeline.jobs.daily import run_daily
from pipeline.jobs.intervals import Interval
from pipeline.jobs.landed import LANDED_PREFIX
from pipeline.lake.landing import Manifest, read_manifest
from pipeline.lake.parquet import read_stories
from pipeline.lake.store import Lake, open_lake
from pipeline.lake.validate import validate
from pipeline.schema import Story
from pipeline.sources.feeds import FeedSpec
from pipeline.sources.state import load_state
from tests.feedserver import FeedServer, Item, Route, gzip_bomb, rss

pytestmark = pytest.mark.integration

D1, D2 = Interval.for_date("2026-11-25"), Interval.for_date("2026-11-26")
CAP = 256 * 1024
SHARED = Item(
    "d1", "Port strike ends after talks", "Dock workers returned on Tuesday.", "https://news.example/strike"
)
RATES = Item(
    "d2", "Central bank holds rates", "The bank kept its main rate unchanged.", "https://news.example/rates"
)
RATES_EDITED = Item(
    "d2",
    "Central bank holds rates",
    "The bank kept its main rate unchanged; two members dissented.",
    RATES.link,
)
TARIFF = Item(
    "w2", "Tariff pause extended", "Negotiators agreed a 90-day extension.", "https://wire.example/tariff"
)
NEW = Item(
    "d3", "Chip export rules published", "The rules cover advanced chips.", "https://news.example/chips"
)
CAFE = Item("c1", "Café société opens in Zürich", "Un café à Zürich, naïve et sûr.", "https://cafe.example/1")

# feed id -> (route, expected failure kind); None = the feed lands
HOSTILE: dict[str, tuple[Route, str]] = {
    "http-500": (Route(status=500, body=b"boom"), "retriable"),
    "rate-limited": (Route(status=429, headers={"Retry-After": "1"}), "retriable"),
    "stalling": (Route(body=rss("Slow", [NEW]), trickle_seconds=10), "retriable"),
    "oversize": (Route(body=b"<rss>" + b"x" * (CAP + 1) + b"</rss>"), "too_large"),
    "gzip-bomb": (Route(raw_gzip=gzip_bomb(64)), "too_large"),
    "malformed": (Route(body=b'<?xml version="1.0"?><rss><<<>>>'), "malformed"),
    "redirect-loop": (Route(redirect_to="/feeds/redirect-loop.xml"), "redirect_loop"),
    "to-metadata": (Route(redirect_to="http://169.254.169.254/latest/meta-data/"), "blocked_address"),
    "to-private": (Route(redirect_to="http://10.0.0.7/feed.xml"), "blocked_address"),
    "empty": (Route(body=b""), "empty"),
}


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


@pytest.fixture
def settings(s3_settings: Settings, s3_lake_uri: str) -> Settings:
    # private addresses are refused except 127.0.0.1 (the feed server): 169.254.x / 10.x stay blocked
    return s3_settings.with_(
        lake=s3_lake_uri,
        allowed_private_networks=("127.0.0.1/32",),
        connect_timeout=1.0,
        total_timeout=1.0,
        max_retries=1,
        backoff_base=0.01,
        max_retry_after=0.5,
        max_body_bytes=CAP,
    )


@pytest.fixture
def lake(settings: Settings) -> Lake:
    lake = open_lake(settings.lake, settings)
    lake.ensure_bucket()
    return lake


def serve_feeds(server: FeedServer, desk: list[Item]) -> list[FeedSpec]:
    feeds = [
        FeedSpec(
            "desk",
            server.route("/feeds/desk.xml", Route(body=rss("Desk", desk), etag=f'"{len(desk)}"')),
            "Desk",
        ),
        FeedSpec(
            "wire",
            server.route("/feeds/wire.xml", Route(body=rss("Wire", [SHARED, TARIFF]), etag='"w"')),
            "Wire",
        ),
        FeedSpec(
            "charset",
            server.route(
                "/feeds/charset.xml",
                Route(
                    body=rss("Cafe", [CAFE]).decode().encode("latin-1"),  # declared utf-8, sent as latin-1
                    last_modified="Wed, 25 Nov 2026 05:00:00 GMT",
                ),
            ),
            "Cafe",
        ),
    ]
    for feed_id, (route, _) in HOSTILE.items():
        feeds.append(FeedSpec(feed_id, server.route(f"/feeds/{feed_id}.xml", route), feed_id))
    return feeds


def keys(lake: Lake) -> set[str]:
    return {o.key for o in lake.list("")}


def landed(lake: Lake, manifest: Manifest) -> list[Story]:
    return [s for o in manifest.objects for s in read_stories(lake.get(o["key"]))]


def all_landed(lake: Lake) -> list[Story]:
    rows = []
    for info in lake.list("_manifests/"):
        rows += landed(lake, read_manifest(lake, info.key))
    return rows


def record_reads(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of every get and exists on `lake` from now on."""
    asked: list[str] = []
    for name in ("get", "exists"):
        method = getattr(lake, name)

        def recorded(key: str, method: Callable[[str], object] = method) -> object:
            asked.append(key)
            return method(key)

        monkeypatch.setattr(lake, name, recorded)
    return asked


def test_daily_runs_land_once_survive_hostile_feeds_and_go_conditional(
    server: FeedServer, settings: Settings, lake: Lake, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = serve_feeds(server, [SHARED, RATES])

    # --- day 1: good feeds land; each hostile feed is recorded, none stops the run
    first = run_daily(feeds, lake, D1, settings)
    by_id = {f["feed_id"]: f for f in first.feeds}
    assert {i: by_id[i]["status"] for i in ("desk", "wire", "charset")} == dict.fromkeys(
        ("desk", "wire", "charset"), "ok"
    )
    for feed_id, (_, kind) in HOSTILE.items():
        assert by_id[feed_id]["status"] == "failed", feed_id
        assert str(by_id[feed_id]["reason"]).startswith(f"{kind}:"), (feed_id, by_id[feed_id]["reason"])
        assert load_state(lake, feed_id).consecutive_failures == 1
    assert by_id["rate-limited"]["http_status"] == 429 and by_id["http-500"]["http_status"] == 500
    assert len(server.requests_for("/feeds/http-500.xml")) == 2  # retried once (max_retries=1)
    assert any("CharacterEncodingOverride" in p for p in by_id["charset"]["problems"])
    # the shared story came from both desk and wire but landed once
    assert first.counts["new"] == 4 and first.counts["batch_duplicate"] == 1
    stories = landed(lake, first)
    assert Counter(s["url"] for s in stories)[SHARED.link] == 1
    assert "Café société opens in Zürich" in {s["title"] for s in stories}
    objects = keys(lake)
    assert {
        "_manifests/daily/2026-11-25.json",
        "_state/feeds/desk.json",
        "_state/feeds/http-500.json",
    } <= objects
    assert any(k.startswith("stories/dt=2026-11-25/") for k in objects)
    for raw_key in (by_id["desk"]["raw_key"], by_id["wire"]["raw_key"]):
        assert raw_key in objects and str(raw_key).removesuffix(".gz") + ".json" in objects
    assert validate(lake).ok

    # --- the same day again: conditional requests, 304s, the same objects, no duplicates
    asked = record_reads(lake, monkeypatch)
    again = run_daily(feeds, lake, D1, settings)
    desk_requests = server.requests_for("/feeds/desk.xml")
    assert len(desk_requests) == 2 and desk_requests[1].headers["if-none-match"] == '"2"'
    assert server.requests_for("/feeds/charset.xml")[1].headers["if-modified-since"].startswith("Wed, 25 Nov")
    statuses = {f["feed_id"]: f["status"] for f in again.feeds}
    assert statuses["desk"] == statuses["wire"] == statuses["charset"] == "not_modified"
    assert {statuses[i] for i in HOSTILE} == {"skipped"}  # in backoff after yesterday's failure
    assert len(server.requests_for("/feeds/http-500.xml")) == 2  # not fetched while backing off
    assert keys(lake) == objects
    # the 304 bodies' stories had landed: not parsed again; the rerun keeps every story of the interval
    assert again.counts["kept"] == 4 and sorted(s["story_id"] for s in landed(lake, again)) == sorted(
        s["story_id"] for s in stories
    )
    # proven by day 1's manifest, which each feed's state names: no marker asked for
    assert {f["landed_in"] for f in again.feeds if f["status"] == "not_modified"} == {first.key}
    assert first.key in asked and not [k for k in asked if k.startswith(LANDED_PREFIX)]
    assert validate(lake).ok

    # --- day 2: desk has one new story and one edited one; wire is unchanged (304)
    server.route("/feeds/desk.xml", Route(body=rss("Desk", [SHARED, RATES_EDITED, NEW]), etag='"3"'))
    second = run_daily(feeds, lake, D2, settings)
    assert (second.counts["new"], second.counts["updated"]) == (1, 1)
    wire = next(f for f in second.feeds if f["feed_id"] == "wire")  # day 1's rerun manifest kept its stories
    assert (wire["status"], wire["stories"], wire["landed_in"]) == ("not_modified", 0, first.key)
    assert sorted(s["title"] for s in landed(lake, second)) == ["Central bank holds rates", NEW.title]
    versions = [(s["story_id"], s["content_hash"]) for s in all_landed(lake)]
    assert len(versions) == len(set(versions)) == 6  # 4 on day 1 + the new story + the edited version
    assert validate(lake).ok


def test_wirefeed_run_command_prints_the_summary(
    server: FeedServer,
    s3_settings: Settings,
    s3_lake_uri: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = server.route("/feeds/desk.xml", Route(body=rss("Desk", [SHARED, RATES])))
    bad = server.route("/feeds/down.xml", Route(status=404))
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(f"- {{id: desk, url: '{good}', source: Desk}}\n- {{id: down, url: '{bad}'}}\n")
    monkeypatch.setenv("WIREFEED_ALLOWED_PRIVATE_NETWORKS", "127.0.0.1/32")
    monkeypatch.setenv("WIREFEED_MAX_RETRIES", "0")
    open_lake(s3_lake_uri, s3_settings).ensure_bucket()
    code = main(["run", "--feeds", str(feeds_file), "--lake", s3_lake_uri, "--date", "2026-11-25"])
    out = capsys.readouterr().out
    assert code == 1, out  # one feed rejected (exit 1); the good one landed and the day validated
    assert "feeds: ok 1, not_modified 0, failed 1, skipped 0" in out
    assert "stories: input 2, new 2" in out and "http_status: HTTP 404" in out
    assert "_manifests/daily/2026-11-25.json" in out and "validate 2026-11-25: ok" in out
