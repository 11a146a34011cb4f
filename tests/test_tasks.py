"""pipeline.jobs.tasks (what each DAG task does) on a local lake in tmp_path, with local feeds as in
config/samples.yaml: JSON-able inputs and outputs, the same landing as `wirefeed run`, validation failures as
FatalError, archive resolution and the backfill day."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError, FatalError
from pipeline.jobs import tasks
from pipeline.jobs.daily import RunFailed, run_daily
from pipeline.jobs.intervals import Interval
from pipeline.lake.landing import manifest_key, read_manifest
from pipeline.lake.parquet import read_stories
from pipeline.lake.store import LocalLake
from pipeline.schema import Story
from pipeline.sources.feeds import load_feeds
from tests.test_archive import put, rss, wire

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
DAY = Interval.for_date("2026-11-20")  # the samples are dated this UTC day
SAMPLE_FEEDS = {
    "rss": "rss-trade-desk.xml",
    "atom": "atom-markets.xml",
    "jsonfeed": "jsonfeed-policy.json",
    "wire": "wire-madrid-talks.txt",
}


class MarkTagger:
    """Stands in for the taxonomy tagger (its own tests cover it)."""

    def tag_story(self, story: Story, packed: bool = False) -> Story:
        return {**story, "topics": ["marked"], "taxonomy_version": "test"}


def feeds_file(tmp_path: Path, extra: str = "") -> Path:
    lines = [
        f"  - {{id: {fid}, url: '{SAMPLES / name}', source: Sample {fid}, language: en, local: true}}\n"
        for fid, name in SAMPLE_FEEDS.items()
    ]
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n" + "".join(lines) + extra)
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(env={}, lake=str(tmp_path / "lake"), feeds_file=str(feeds_file(tmp_path)))


def jsonable(value: Any) -> Any:
    assert json.loads(json.dumps(value)) == value
    return value


def run_tasks(settings: Settings, interval: Interval = DAY) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The wire_daily chain: load_feeds -> fetch_feed (per feed) -> land; what goes through XCom."""
    feeds = jsonable(tasks.list_feeds(settings, interval))
    outcomes = [jsonable(tasks.fetch_feed(f, interval, settings, tagger=MarkTagger())) for f in feeds]
    return outcomes, jsonable(tasks.land_feeds(outcomes, interval, settings))


def story_versions(lake: LocalLake, label: str) -> set[tuple[str, str]]:
    m = read_manifest(lake, manifest_key("daily", label))
    return {(s["story_id"], s["content_hash"]) for o in m.objects for s in read_stories(lake.get(o["key"]))}


def test_list_feeds_makes_the_lake_and_returns_feed_dicts(settings: Settings) -> None:
    feeds = tasks.list_feeds(settings)
    assert [f["id"] for f in feeds] == list(SAMPLE_FEEDS)
    assert all(f["local"] and f["enabled"] and f["language"] == "en" for f in feeds)
    assert Path(settings.lake).is_dir()
    jsonable(feeds)


def test_daily_chain_lands_and_validates_the_interval(settings: Settings) -> None:
    outcomes, landed = run_tasks(settings)
    lake = LocalLake(settings.lake)
    assert {o["feed_id"]: o["status"] for o in outcomes} == dict.fromkeys(SAMPLE_FEEDS, "ok")
    assert all(o["staged_uri"] for o in outcomes)
    assert lake.list("_staging/") == []  # removed once landed: readers of the lake never see them
    assert landed["label"] == "2026-11-20" and landed["feeds"] == {"ok": 4} and landed["failed"] == {}
    assert landed["counts"]["new"] == 3 + 2 + 2 + 1
    manifest = read_manifest(lake, manifest_key("daily", "2026-11-20"))
    assert landed["objects"] == [o["key"] for o in manifest.objects]

    report = jsonable(tasks.validate_interval(DAY, settings))
    assert report["ok"] is True and report["manifests"] == 1 and report["rows"] == 8
    assert landed["landed"] is True and landed["rows"] == 8 and landed["manifest"] == manifest.key

    validated = jsonable(tasks.validate_landing(landed, DAY, settings))
    assert validated is not None and validated["ok"] is True and validated["rows"] == 8
    assert validated["asset"] == {
        "job": "daily",
        "interval_start": "2026-11-20T00:00:00+00:00",
        "interval_end": "2026-11-21T00:00:00+00:00",
        "label": "2026-11-20",
        "counts": landed["counts"],
        "rows": 8,
        "manifest": lake.uri(manifest.key),
    }


def test_tasks_land_what_wirefeed_run_lands(settings: Settings, tmp_path: Path) -> None:
    """One code path: the DAG's tasks and run_daily (`wirefeed run`) land the same story versions."""
    run_tasks(settings)
    cli_lake = LocalLake(tmp_path / "cli-lake")
    manifest = run_daily(load_feeds(settings.feeds_file), cli_lake, DAY, settings, tagger=MarkTagger())
    assert manifest.counts["new"] == 8
    assert story_versions(LocalLake(settings.lake), DAY.label) == story_versions(cli_lake, DAY.label)


def test_land_records_failed_feeds_and_fails_only_when_all_failed(tmp_path: Path) -> None:
    (tmp_path / "empty.xml").write_bytes(b"")
    path = feeds_file(tmp_path, "  - {id: gone, url: empty.xml, local: true}\n")
    settings = Settings.load(env={}, lake=str(tmp_path / "lake"), feeds_file=str(path))
    outcomes, landed = run_tasks(settings)
    gone = next(o for o in outcomes if o["feed_id"] == "gone")
    assert gone["status"] == "failed" and gone["staged_uri"] is None and gone["reason"].startswith("empty")
    assert landed["feeds"] == {"ok": 4, "failed": 1} and set(landed["failed"]) == {"gone"}

    (tmp_path / "only-gone.yaml").write_text("feeds:\n  - {id: gone, url: empty.xml, local: true}\n")
    broken = settings.with_(feeds_file=str(tmp_path / "only-gone.yaml"), lake=str(tmp_path / "lake2"))
    with pytest.raises(RunFailed) as failed:
        run_tasks(broken, Interval.for_date("2026-11-21"))
    # landed first (every feed recorded in the manifest), then failed
    assert failed.value.fields["summary"]["feeds"] == {"failed": 1}
    assert LocalLake(broken.lake).exists(manifest_key("daily", "2026-11-21"))


def test_a_rerun_of_the_interval_replaces_it_with_the_same_objects(settings: Settings) -> None:
    first, landed = run_tasks(settings)
    versions = story_versions(LocalLake(settings.lake), DAY.label)
    again, relanded = run_tasks(settings)
    # the bodies' stories already landed: nothing is parsed again, and the rerun keeps every story
    assert [o["stories"] for o in again] == [0] * len(first)
    assert all("not parsed again" in o["problems"][0] for o in again)
    assert relanded["counts"]["kept"] == landed["counts"]["new"] and relanded["objects"] == landed["objects"]
    assert relanded["topics"] == landed["topics"]
    assert story_versions(LocalLake(settings.lake), DAY.label) == versions


def test_validate_interval_raises_with_the_first_violations(settings: Settings) -> None:
    run_tasks(settings)
    lake = LocalLake(settings.lake)
    key = read_manifest(lake, manifest_key("daily", DAY.label)).objects[0]["key"]
    (Path(settings.lake) / key).unlink()
    with pytest.raises(FatalError) as err:
        tasks.validate_interval(DAY, settings)
    assert "2026-11-20" in err.value.message
    violations = err.value.fields["violations"]
    assert isinstance(violations, list) and violations[0]["kind"] == "missing_object"
    assert violations[0]["keys"] == [key]
    # another day's interval has nothing to check: ok
    assert tasks.validate_interval(Interval.for_date("2026-11-10"), settings)["manifests"] == 0


def test_validate_landing_publishes_nothing_when_nothing_landed(settings: Settings, tmp_path: Path) -> None:
    day = Interval.for_date("2026-11-25", "backfill")
    archive = tmp_path / "archive"
    put(archive, "2026/11/24/w1.txt", wire("Alice"))
    empty = tasks.ingest_archive_day(day, settings, archive=str(archive))
    assert (empty["skipped"], empty["reason"], empty["landed"]) == (True, "empty", False)
    assert tasks.validate_landing(empty, day, settings) is None
    no_story = {"landed": True, "rows": 0, "manifest": manifest_key("daily", "2026-11-25")}
    assert tasks.validate_landing(no_story, day, settings) is None

    put(archive, "2026/11/25/w2.txt", wire("Bob"))
    landed = tasks.ingest_archive_day(day, settings, archive=str(archive))
    validated = tasks.validate_landing(landed, day, settings)
    assert validated is not None and validated["asset"]["counts"]["new"] == 1
    assert validated["asset"]["manifest"].endswith("_manifests/backfill/2026-11-25.json")
    unchanged = tasks.ingest_archive_day(day, settings, archive=str(archive))
    assert unchanged["reason"] == "unchanged" and tasks.validate_landing(unchanged, day, settings) is None


def test_archive_uri_prefers_the_given_archive_then_the_environment() -> None:
    env = {"WIREFEED_ARCHIVE": "/from/env"}
    assert tasks.archive_uri("s3://given/archive", env=env) == "s3://given/archive"
    assert tasks.archive_uri(None, env=env) == "/from/env"
    assert tasks.archive_uri("", env=env) == "/from/env"
    with pytest.raises(ConfigError, match="no archive"):
        tasks.archive_uri(None, env={})


def test_ingest_archive_day_lands_skips_and_forces(tmp_path: Path, settings: Settings) -> None:
    archive = tmp_path / "archive"
    put(archive, "2026/11/25/wire.xml", rss(("b", "Beta", "Tue, 25 Nov 2026 09:00:00 GMT")))
    put(archive, "2026/11/25/w1.txt", wire("Alice"))
    day = Interval.for_date("2026-11-25", "backfill")

    summary = jsonable(tasks.ingest_archive_day(day, settings, archive=str(archive)))
    assert (summary["day"], summary["skipped"], summary["inputs"]) == ("2026-11-25", False, 2)
    assert summary["stories"]["new"] == 2 and summary["manifest"] == manifest_key("backfill", "2026-11-25")
    report = tasks.validate_interval(day, settings)
    assert report["ok"] and report["manifests"] == 1

    assert tasks.ingest_archive_day(day, settings, archive=str(archive))["skipped"] is True
    forced = tasks.ingest_archive_day(day, settings, archive=str(archive), force=True, layout="")
    assert not forced["skipped"] and forced["stories"] == summary["stories"]


def test_ingest_archive_day_needs_an_archive(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIREFEED_ARCHIVE", raising=False)
    with pytest.raises(ConfigError):
        tasks.ingest_archive_day(Interval.for_date("2026-11-25", "backfill"), settings)
    archive = tmp_path / "env-archive"
    put(archive, "2026/11/25/w1.txt", wire("Bob"))
    monkeypatch.setenv("WIREFEED_ARCHIVE", str(archive))
    summary = tasks.ingest_archive_day(Interval.for_date("2026-11-25", "backfill"), settings)
    assert summary["inputs"] == 1 and summary["stories"]["new"] == 1
