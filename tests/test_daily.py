"""fetch_feed_to_stage and run_daily against a loopback feed server and a local-directory lake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import RetriableError
from pipeline.jobs.daily import RunFailed, fetch_all, fetch_feed_to_stage, run_daily, staging_key
from pipeline.jobs.intervals import Interval
from pipeline.jobs.landed import LANDED_PREFIX, LandedBodies, landed_key
from pipeline.lake.landing import manifest_key
from pipeline.lake.parquet import read_stories
from pipeline.lake.store import LocalLake
from pipeline.schema import Story
from pipeline.sources.feeds import FeedSpec
from pipeline.sources.state import load_state
from tests.feedserver import FeedServer, Item, Route, rss
from tests.test_landed import CountingLake
from tests.test_landing import RecordingLake

DAY = Interval.for_date("2026-11-25")
FEED = rss(
    "Desk",
    [
        Item("g1", "Port strike ends", "Dock workers returned on Tuesday.", "https://news.example/1"),
        Item("g2", "Central bank holds rates", "The bank kept its rate unchanged.", "https://news.example/2"),
    ],
)


class MarkTagger:
    """Stands in for the taxonomy tagger: marks every story so the test can see tagging ran."""

    def tag_story(self, story: Story, packed: bool = False) -> Story:
        return {**story, "topics": ["marked"], "taxonomy_version": "test"}


@pytest.fixture
def settings() -> Settings:
    return Settings(
        allowed_private_networks=("127.0.0.1/32",),
        total_timeout=2.0,
        connect_timeout=1.0,
        max_retries=0,
        backoff_base=0.01,
        fetch_concurrency=4,
        per_host_concurrency=1,
    )


@pytest.fixture
def lake(tmp_path: Path) -> LocalLake:
    return LocalLake(tmp_path / "lake")


def distinct_feeds(server: FeedServer, n: int) -> list[FeedSpec]:
    """`n` feeds f0, f1, ... serving FEED with their own story URLs (distinct stories) and ETags."""
    return [
        FeedSpec(
            f"f{i}",
            server.route(f"/f{i}.xml", Route(body=FEED.replace(b"news.", f"n{i}.".encode()), etag=f'"v{i}"')),
            "S",
        )
        for i in range(n)
    ]


def stage(feed: FeedSpec, lake: LocalLake, settings: Settings) -> dict[str, object]:
    return fetch_feed_to_stage(feed, lake, DAY, settings, tagger=MarkTagger())


def test_ok_feed_is_stored_raw_staged_and_remembered(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    url = server.route("/desk.xml", Route(body=FEED, etag='"v1"'))
    outcome = stage(FeedSpec("desk", url, "Desk", "en"), lake, settings)
    assert outcome["status"] == "ok" and outcome["http_status"] == 200 and outcome["reason"] is None
    assert outcome["stories"] == 2 and outcome["staged_uri"] == lake.uri(staging_key(DAY, "desk"))
    staged = read_stories(lake.get(staging_key(DAY, "desk")))
    assert sorted(s["title"] for s in staged) == ["Central bank holds rates", "Port strike ends"]
    assert all(s["topics"] == ["marked"] and s["source"] == "Desk" and s["language"] == "en" for s in staged)
    assert isinstance(outcome["raw_key"], str) and lake.exists(outcome["raw_key"])
    state = load_state(lake, "desk")
    assert (state.etag, state.raw_key, state.last_status) == ('"v1"', outcome["raw_key"], "ok")


def test_second_fetch_is_conditional_and_304_replays_the_raw_body(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    url = server.route("/desk.xml", Route(body=FEED, etag='"v1"'))
    feed = FeedSpec("desk", url, "Desk")
    first = stage(feed, lake, settings)
    staged_before = lake.get(staging_key(DAY, "desk"))
    second = stage(feed, lake, settings)
    assert server.requests_for("/desk.xml")[1].headers["if-none-match"] == '"v1"'
    assert second["status"] == "not_modified" and second["http_status"] == 304
    assert second["raw_key"] == first["raw_key"] and second["stories"] == 2
    assert read_stories(lake.get(staging_key(DAY, "desk"))) == read_stories(staged_before)


def test_a_failing_feed_is_recorded_then_backs_off(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    url = server.route("/gone.xml", Route(status=404))
    feed = FeedSpec("gone", url, "Gone")
    outcome = stage(feed, lake, settings)
    assert outcome["status"] == "failed" and outcome["http_status"] == 404
    assert str(outcome["reason"]).startswith("http_status:") and outcome["staged_uri"] is None
    state = load_state(lake, "gone")
    assert state.consecutive_failures == 1 and state.next_retry_at is not None
    again = stage(feed, lake, settings)
    assert again["status"] == "skipped" and "backoff until" in str(again["reason"])
    assert len(server.requests_for("/gone.xml")) == 1  # the skipped feed was not fetched


@pytest.mark.parametrize(
    ("route", "kind"),
    [
        (Route(body=b'<?xml version="1.0"?><rss><<<>>>'), "malformed"),
        (Route(body=b""), "empty"),
        (Route(status=500), "retriable"),
        (Route(redirect_to="http://169.254.169.254/latest/meta-data/"), "blocked_address"),
    ],
)
def test_bad_feeds_fail_without_raising(
    server: FeedServer, lake: LocalLake, settings: Settings, route: Route, kind: str
) -> None:
    url = server.route("/bad", route)
    outcome = stage(FeedSpec("bad", url, "Bad"), lake, settings)
    assert outcome["status"] == "failed" and str(outcome["reason"]).startswith(f"{kind}:")
    assert not lake.exists(staging_key(DAY, "bad"))


def test_local_feed_is_read_from_disk(tmp_path: Path, lake: LocalLake, settings: Settings) -> None:
    path = tmp_path / "local.xml"
    path.write_bytes(FEED)
    outcome = stage(FeedSpec("local", str(path), "Local", local=True), lake, settings)
    assert outcome["status"] == "ok" and outcome["stories"] == 2


def test_per_host_limit_holds(server: FeedServer, lake: LocalLake, settings: Settings) -> None:
    feeds = [
        FeedSpec(f"f{i}", server.route(f"/f{i}.xml", Route(body=FEED, stall_before_body=0.2)), "S")
        for i in range(4)
    ]
    outcomes = fetch_all(feeds, lake, DAY, settings, tagger=MarkTagger()).outcomes
    assert [o["feed_id"] for o in outcomes] == ["f0", "f1", "f2", "f3"]
    assert all(o["status"] == "ok" for o in outcomes)
    assert server.max_in_flight == 1


def test_run_daily_lands_good_feeds_and_records_bad_ones(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    feeds = [
        FeedSpec("desk", server.route("/desk.xml", Route(body=FEED)), "Desk"),
        FeedSpec("down", server.route("/down.xml", Route(status=503)), "Down"),
    ]
    manifest = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())
    assert [f["status"] for f in manifest.feeds] == ["ok", "failed"]
    assert manifest.counts["new"] == 2 and lake.exists(manifest_key("daily", DAY.label))


def test_run_daily_lands_what_it_parsed_without_staging_it(
    server: FeedServer, tmp_path: Path, settings: Settings
) -> None:
    """The run's own process lands the parsed tables: no batch is written to _staging/ and read back; the
    manifest names itself as where each body landed, which with the states proves them: no marker."""
    lake = RecordingLake(tmp_path / "lake")
    feeds = distinct_feeds(server, 3)
    manifest = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())
    assert manifest.counts["new"] == 6 and manifest.rows == 6
    assert not [key for _, key in lake.ops if key.startswith(("_staging/", LANDED_PREFIX))]
    assert [(f["staged_uri"], f["landed_in"], f["stories"]) for f in manifest.feeds] == [
        (None, manifest.key, 2)
    ] * 3
    landed = LandedBodies(lake)
    for f in manifest.feeds:
        assert landed.landed_in(load_state(lake, f["feed_id"])) == manifest.key


def test_bodies_parsed_by_a_run_whose_landing_failed_are_parsed_and_landed_by_the_next(
    server: FeedServer, tmp_path: Path, settings: Settings
) -> None:
    """The states name the interval's manifest before it exists: until it does, nothing proves the bodies
    landed, so the next run (all 304) parses them again and lands every story once."""
    feeds = distinct_feeds(server, 2)
    with pytest.raises(RetriableError):
        run_daily(
            feeds, RecordingLake(tmp_path / "lake", fail_story_put=1), DAY, settings, tagger=MarkTagger()
        )
    lake = RecordingLake(tmp_path / "lake")
    assert not lake.list("_manifests/") and load_state(lake, "f0").landed_in == manifest_key(
        "daily", DAY.label
    )
    again = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())
    assert [f["status"] for f in again.feeds] == ["not_modified"] * 2
    assert (again.counts["new"], again.rows, [f["stories"] for f in again.feeds]) == (4, 4, [2, 2])


def test_a_rerun_in_which_a_feed_fails_marks_its_landed_body(
    server: FeedServer, tmp_path: Path, settings: Settings
) -> None:
    """The rerun's manifest no longer lists the failed feed's body, though its objects keep the stories: the
    body's marker (naming the rerun's manifest) keeps it from being parsed again."""
    lake = CountingLake(tmp_path / "lake")
    desk = server.route("/desk.xml", Route(body=FEED, etag='"v1"'))
    wire = server.route("/wire.xml", Route(body=FEED.replace(b"news.", b"wire."), etag='"w1"'))
    feeds = [FeedSpec("desk", desk, "Desk"), FeedSpec("wire", wire, "Wire")]
    first = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())
    assert first.counts["new"] == 4 and not lake.list(LANDED_PREFIX)
    server.route("/desk.xml", Route(status=404))
    rerun = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())
    assert [f["status"] for f in rerun.feeds] == ["failed", "not_modified"] and rerun.rows == 4
    desk_body = first.feeds[0]["raw_key"]
    assert [o.key for o in lake.list(LANDED_PREFIX)] == [landed_key(desk_body)]
    state = load_state(lake, "desk")
    assert (state.raw_key, LandedBodies(lake).landed_in(state)) == (desk_body, rerun.key)


def test_run_fails_over_the_failed_share_after_landing(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    feeds = [
        FeedSpec("desk", server.route("/desk.xml", Route(body=FEED)), "Desk"),
        FeedSpec("down", server.route("/down.xml", Route(status=503)), "Down"),
    ]
    with pytest.raises(RunFailed) as err:
        run_daily(feeds, lake, DAY, settings.with_(max_failed_share=0.4), tagger=MarkTagger())
    assert err.value.fields["summary"]["failed"].keys() == {"down"}  # type: ignore[index]
    assert err.value.manifest.counts["new"] == 2 and lake.exists(manifest_key("daily", DAY.label))


def test_run_fails_by_default_only_when_every_feed_failed(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    feeds = [FeedSpec("down", server.route("/down.xml", Route(status=503)), "Down")]
    with pytest.raises(RunFailed):
        run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())


def test_a_304_whose_body_already_landed_is_not_parsed_and_a_rerun_keeps_its_stories(
    server: FeedServer, lake: LocalLake, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = server.route("/desk.xml", Route(body=FEED, etag='"v1"'))
    feeds = [FeedSpec("desk", url, "Desk")]
    first = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())
    assert first.counts["new"] == 2

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("a body that already landed was parsed again")

    monkeypatch.setattr("pipeline.parsing.stories.stories_from_bytes", no_parsing)
    rerun = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())  # 304: the same interval again
    assert rerun.feeds[0]["status"] == "not_modified" and rerun.feeds[0]["stories"] == 0
    assert (rerun.counts["kept"], rerun.rows) == (2, 2)  # every story of the interval stays
    next_day = run_daily(feeds, lake, Interval.for_date("2026-11-26"), settings, tagger=MarkTagger())
    assert next_day.rows == 0 and next_day.feeds[0]["status"] == "not_modified"


def test_a_304_run_after_a_landing_asks_for_no_marker_and_parses_nothing(
    server: FeedServer, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The states name the manifest that landed their bodies: one read of it answers for every feed, even
    when the landing died before its markers were written (they come after the manifest)."""
    lake = CountingLake(tmp_path / "lake")
    feeds = distinct_feeds(server, 3)
    first = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())
    assert first.counts["new"] == 6
    for info in lake.list(LANDED_PREFIX):  # as if the landing had stopped right after its manifest
        lake.delete(info.key)

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("a body that already landed was parsed again")

    monkeypatch.setattr("pipeline.parsing.stories.stories_from_bytes", no_parsing)
    lake.asked.clear()
    next_day = run_daily(feeds, lake, Interval.for_date("2026-11-26"), settings, tagger=MarkTagger())
    assert [f["status"] for f in next_day.feeds] == ["not_modified"] * 3 and next_day.rows == 0
    assert not [key for key in lake.asked if key.startswith(LANDED_PREFIX)]
    assert lake.asked.count(manifest_key("daily", DAY.label)) == 1
    rerun = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())  # the same interval: all kept
    assert (rerun.counts["kept"], rerun.rows) == (6, 6)
    assert [f["landed_in"] for f in rerun.feeds] == [rerun.key] * 3 and not any(
        f["staged_uri"] for f in rerun.feeds
    )
    lake.asked.clear()  # the rerun's manifest, which names no staged batch, still proves the bodies landed
    run_daily(feeds, lake, Interval.for_date("2026-11-27"), settings, tagger=MarkTagger())
    assert not [key for key in lake.asked if key.startswith(LANDED_PREFIX)]


def test_a_body_staged_but_never_landed_is_parsed_again(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    url = server.route("/desk.xml", Route(body=FEED, etag='"v1"'))
    feed = FeedSpec("desk", url, "Desk")
    stage(feed, lake, settings)  # fetched and staged; its landing never happened
    second = stage(feed, lake, settings)  # 304
    assert second["status"] == "not_modified" and second["stories"] == 2


# --- hostile feeds: each costs its own feed, with a reason; the others land ---------------------------------


def many_items(n: int, body: str = "A paragraph of text about the economy and its many parts.") -> bytes:
    return rss("Big", [Item(f"g{i}", f"Story {i}", body, f"https://news.example/{i}") for i in range(n)])


# An item body of 20 HTML paragraphs with a topic in each: 10,000 such items (the item cap) take about a
# second of CPU to parse, clean and tag on this machine, five times the budget the tests below set (10,000
# one-line items came to take 0.4 s once parsing was compiled, too near a 0.5 s budget to prove it).
HEAVY_BODY = "Officials met in Madrid for a second day of trade negotiations on tariffs.</p><p>" * 20
BUDGET = 0.2


def test_a_feed_over_its_parse_budget_is_too_slow_and_the_others_land(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    """The budget is CPU time in the main thread, where run_daily parses (fetches run in threads). A 10,000
    item feed of HEAVY_BODY needs about a second of CPU, five times BUDGET; the small feeds need
    milliseconds."""
    feeds = [
        FeedSpec("desk", server.route("/desk.xml", Route(body=FEED)), "Desk"),
        FeedSpec("huge", server.route("/huge.xml", Route(body=many_items(10_000, HEAVY_BODY))), "Huge"),
        FeedSpec("desk2", server.route("/desk2.xml", Route(body=FEED.replace(b"news.", b"wire."))), "D2"),
    ]
    manifest = run_daily(feeds, lake, DAY, settings.with_(parse_budget=BUDGET, max_body_bytes=50 << 20))
    by_id = {f["feed_id"]: f for f in manifest.feeds}
    assert by_id["huge"]["status"] == "failed" and by_id["huge"]["reason"].startswith("too_slow:")
    assert by_id["desk"]["status"] == by_id["desk2"]["status"] == "ok"
    assert manifest.counts["new"] == 4
    assert load_state(lake, "huge").last_error.startswith("too_slow:")  # type: ignore[union-attr]


def test_item_and_field_caps_are_recorded_reasons(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    long_title = rss("T", [Item("g1", "word " * 2_000_000, "Body.", "https://news.example/t")])
    feeds = [
        FeedSpec("tiny-items", server.route("/tiny.xml", Route(body=many_items(200_000, "x"))), "T"),
        FeedSpec("long-title", server.route("/title.xml", Route(body=long_title)), "L"),
    ]
    # bodies of 10-20 MB: a generous fetch timeout, so a loaded machine does not turn the caps into timeouts
    roomy = settings.with_(max_body_bytes=50 << 20, total_timeout=60.0)
    manifest = run_daily(feeds, lake, DAY, roomy, tagger=MarkTagger())
    tiny, title = manifest.feeds
    assert tiny["status"] == "failed" and tiny["reason"].startswith("too_many_entries:")
    assert title["status"] == "ok" and title["problems"] == [
        "entry 0: title cut from 9999999 to 1000 characters"
    ]


@pytest.mark.parametrize(
    "bad_url",
    [
        "http://127.0.0.1:99999/feed.xml",
        "http://[::1/feed.xml",
        "REDIRECT:http://127.0.0.1:99999/x",
        "REDIRECT:http://[::1/x",
    ],
)
def test_malformed_feed_urls_and_redirects_fail_that_feed_only(
    server: FeedServer, lake: LocalLake, settings: Settings, bad_url: str
) -> None:
    if bad_url.startswith("REDIRECT:"):
        bad_url = server.route("/moved", Route(redirect_to=bad_url.removeprefix("REDIRECT:")))
    feeds = [
        FeedSpec("desk", server.route("/desk.xml", Route(body=FEED)), "Desk"),
        FeedSpec("bad", bad_url, "B"),
    ]
    manifest = run_daily(feeds, lake, DAY, settings, tagger=MarkTagger())
    desk, bad = manifest.feeds
    assert desk["status"] == "ok" and manifest.counts["new"] == 2
    assert bad["status"] == "failed" and bad["reason"].startswith("bad_url:")


def test_parse_workers_start_with_the_default_tagger_built_by_their_forkserver(tmp_path: Path) -> None:
    """The daily run's parse pool preloads the tagger in its forkserver (one per process, the first pool's
    preload wins: checked in a fresh interpreter) so no worker builds its own."""
    code = (
        "from pipeline.config import Settings\n"
        "from pipeline.jobs.daily import _parse_executor\n"
        "from pipeline.jobs.intervals import Interval\n"
        "if __name__ == '__main__':\n"
        "    with _parse_executor(1, LAKE, Interval.for_date('2026-11-25'), Settings()) as pool:\n"
        "        print(pool.submit(eval, BUILT).result())\n"
    )
    built = "__import__('sys').modules['pipeline.tagging.rules'].default_tagger.cache_info().currsize"
    code = code.replace("BUILT", repr(built)).replace("LAKE", repr(str(tmp_path / "lake")))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr[-2000:]


def test_the_budget_holds_in_the_worker_processes_of_a_big_run(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    """With enough feeds (and the default tagger) run_daily splits them over worker processes, each
    fetching in threads and parsing in its main thread: the budget works there too."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: run_daily stays in one process")
    small = [
        FeedSpec(
            f"f{i}", server.route(f"/f{i}.xml", Route(body=FEED.replace(b"news.", f"n{i}.".encode()))), "S"
        )
        for i in range(15)
    ]
    huge = FeedSpec("huge", server.route("/huge.xml", Route(body=many_items(10_000, HEAVY_BODY))), "Huge")
    tight = settings.with_(parse_budget=BUDGET, max_body_bytes=50 << 20)
    manifest = run_daily([*small, huge], lake, DAY, tight)
    by_id = {f["feed_id"]: f for f in manifest.feeds}
    assert by_id["huge"]["reason"].startswith("too_slow:")
    assert all(by_id[f.id]["status"] == "ok" for f in small) and manifest.counts["new"] == 30


def test_a_304_with_no_stored_body_fails_and_drops_the_validators(
    server: FeedServer, lake: LocalLake, settings: Settings
) -> None:
    """A server that answers 304 to a first, unconditional GET (a red-team server, 4 Dec) was recorded as
    `not_modified` with no stories and no reason; it fails now, and the next attempt fetches it whole."""
    url = server.route("/broken.xml", Route(status=304, etag='"x"'))
    outcome = stage(FeedSpec("broken", url, "Broken"), lake, settings)
    assert outcome["status"] == "failed" and outcome["http_status"] == 304
    assert "no stored body to re-read" in (outcome["reason"] or "")
    state = load_state(lake, "broken")
    assert (state.etag, state.last_modified, state.last_status) == (None, None, "failed")
