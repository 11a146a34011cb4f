"""Both DAGs as a deployment runs them (tests/integration/airflow_stack.py): PostgreSQL, Redis, MinIO, an
api-server, a dag-processor, a scheduler with the CeleryExecutor and two Celery workers on hosts of their own
(wf-worker-a, wf-worker-b) that share nothing but the database and MinIO. The archive is in MinIO too.

In order, on one deployment: wire_daily scheduled by the scheduler itself, its mapped fetches spread over
both workers; a 3-day `airflow backfill create` of wire_backfill, exactly once and validated, lake tasks one
at a time across workers; days done only for the archive listing they saw (empty day, all-rejected day, new
data for a landed day, unchanged reruns); scheduling wire_backfill by configuration. Every wait has an upper
bound; no timing is asserted (the fetch+parse vs land split is printed for the README)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.lake.landing import manifest_key, read_manifest
from pipeline.lake.parquet import read_stories
from pipeline.lake.store import Lake, open_lake
from pipeline.lake.validate import validate
from tests.feedserver import FeedServer, Item, Route, rss
from tests.integration.airflow_stack import AirflowStack
from tests.integration.conftest import PostgresServer, RedisServer, _drop_bucket, _new_bucket

# a bound on hangs (each test waits on several runs, on a shared 2-core machine), not a speed assertion
pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
WORKERS = ("wf-worker-a", "wf-worker-b")
FEEDS = 8  # mapped fetches: more than one worker's concurrency (2), fewer than the fetch pool allows at once
DAYS = [date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)]
LATE, BAD = date(2026, 10, 10), date(2026, 10, 11)  # listing scenario days

TOPIC_LINES = [
    "Negotiators discussed tariffs on steel and aluminium and a pause on reciprocal tariff increases.",
    "Exporters of rare earth elements reported delays in licences for magnet shipments to car makers.",
    "The future of TikTok and the divestiture deadline set for its parent company ByteDance was debated.",
    "Semiconductor makers reviewed export controls on advanced chips and chipmaking equipment.",
]


def wire_story(n: int, day: date) -> bytes:
    first, second = TOPIC_LINES[n % 4], TOPIC_LINES[(n + 1) % 4]
    return (
        f"Archive story {n} from the trade desk on {day.isoformat()}. {first} Officials said the talks in "
        f"round {n} would continue next week with working groups meeting in several capitals.\n"
        f"{second} Analysts expect further announcements after the meetings conclude, according to people "
        f"familiar with the schedule for round {n}.\n"
        "📌 Reference Map:\n- Paragraph 1 – [1], [2]\n- Paragraph 2 – [2]\nSource: Test Wire Services\n"
    ).encode()


def two_items(key: str, title: str, day: date, rotate: int = 0) -> list[Item]:
    """Two feed items on the topics of TOPIC_LINES, published 08:00 and 09:00 UTC on `day`."""
    return [
        Item(
            guid=f"{key}-{i}",
            title=f"{title} {i}: tariff talks resume",
            body=f"{TOPIC_LINES[(rotate + i) % 4]} {TOPIC_LINES[(rotate + i + 1) % 4]} Item {i} of {key}.",
            link=f"https://{key}.example/story/{i}",
            published=f"{day:%a, %d %b %Y} 0{i + 8}:00:00 GMT",
        )
        for i in range(2)
    ]


def snapshot(day: date) -> bytes:
    return rss("Archived Trade Feed", two_items(f"snap-{day}", "Snapshot story", day))


@dataclass
class Deployment:
    stack: AirflowStack
    lake: Lake
    archive: Lake
    bucket: str
    settings: Settings
    feeds: FeedServer


@pytest.fixture(scope="module")
def deployment(
    tmp_path_factory: pytest.TempPathFactory,
    s3_settings: Settings,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("deployment")
    bucket = _new_bucket(s3_settings.s3)
    lake_uri, archive_uri = f"s3://{bucket}/lake", f"s3://{bucket}/archive"
    with FeedServer() as server:
        lines = []
        for f in range(FEEDS):
            items = two_items(f"desk{f}", f"Desk {f} story", date(2026, 11, 30), rotate=f)
            # a slow answer, as remote feeds give: fetches overlap and both workers are needed
            url = server.route(f"/desk{f}.xml", Route(body=rss(f"Desk {f}", items), stall_before_body=1.5))
            lines.append(f"  - {{id: desk{f}, url: '{url}'}}\n")
        feeds = root / "feeds.yaml"
        feeds.write_text("feeds:\n" + "".join(lines))
        stack = AirflowStack(
            root,
            db_url=postgres_server.create_database(f"wf_{uuid.uuid4().hex[:12]}"),
            broker_url=redis_server.url(1),
            s3=s3_settings,
            config={
                "WIREFEED_LAKE": lake_uri,
                "WIREFEED_ALLOWED_PRIVATE_NETWORKS": "127.0.0.1/32",  # the feeds are served on loopback
                "WIREFEED_MAX_RETRIES": "0",
                "WIREFEED_TOTAL_TIMEOUT": "30",
                "WIREFEED_RETRY_DELAY_SECONDS": "1",
            },
            files={"WIREFEED_FEEDS": feeds},
        )
        try:
            stack.start()
            stack.cli("variables", "set", "wirefeed_archive", archive_uri)
            # runs of a paused DAG sit queued forever; unpaused, wire_backfill still schedules nothing itself
            stack.cli("dags", "unpause", "wire_backfill")
            for host in WORKERS:
                stack.start_worker(host)
            yield Deployment(
                stack,
                open_lake(lake_uri, s3_settings),
                open_lake(archive_uri, s3_settings),
                bucket,
                s3_settings,
                server,
            )
        finally:
            stack.stop()
            _drop_bucket(s3_settings.s3, bucket)


def versions(lake: Lake) -> set[tuple[str, str]]:
    return {
        (s["story_id"], s["content_hash"])
        for o in lake.list("stories/")
        for s in read_stories(lake.get(o.key))
    }


def seconds(ti: dict[str, Any]) -> float:
    return float((ti["end"] - ti["start"]).total_seconds())


def test_wire_daily_is_scheduled_and_its_fetches_spread_over_both_workers(deployment: Deployment) -> None:
    st = deployment.stack
    st.cli("dags", "unpause", "wire_daily")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    runs = st.wait(
        "the scheduled wire_daily run",
        lambda: (r := st.runs("wire_daily")) and all(s in ("success", "failed") for s, _ in r.values()) and r,
    )
    assert runs == {yesterday: ("success", "scheduled")}, f"{runs}\n{st.task_errors()}"

    tis = st.task_instances("wire_daily", yesterday)
    fetches = [ti for (task, _), ti in tis.items() if task == "fetch_feed"]
    assert len(fetches) == FEEDS and {ti["state"] for ti in tis.values()} == {"success"}
    assert {ti["hostname"] for ti in fetches} == set(WORKERS)  # the mapped fetches ran on both workers
    assert {ti["pool"] for ti in fetches} == {"wirefeed_fetch"}
    xcom_keys = st.query(
        "select distinct key from xcom where dag_id = 'wire_daily' and task_id = 'fetch_feed'"
    )
    assert xcom_keys == [("return_value",)]  # one XCom per fetch, not one per key of its dict

    lake = deployment.lake
    manifest = read_manifest(lake, manifest_key("daily", yesterday))
    assert manifest.counts["new"] == 2 * FEEDS and manifest.rows == 2 * FEEDS
    assert {f["status"] for f in manifest.feeds} == {"ok"}
    assert validate(lake).ok
    (event,) = st.asset_events("wire_daily")
    assert event["task_id"] == "validate" and event["extra"]["label"] == yesterday
    assert event["extra"]["manifest"] == lake.uri(manifest.key) and event["extra"]["counts"]["new"] == 16

    land, check = tis[("land", -1)], tis[("validate", -1)]
    fetch_wall = max(t["end"] for t in fetches) - min(t["start"] for t in fetches)
    split = {
        "fetch_parse_task_seconds": sorted(round(seconds(t), 1) for t in fetches),
        "fetch_parse_wall_seconds": round(fetch_wall.total_seconds(), 1),
        "land_seconds": round(seconds(land), 1),
        "validate_seconds": round(seconds(check), 1),
        "per_worker": {h: sum(1 for t in fetches if t["hostname"] == h) for h in WORKERS},
    }
    print(f"\nwire_daily time split (CeleryExecutor, 2 workers): {json.dumps(split)}")


def test_backfill_create_on_celery_lands_three_days_exactly_once(deployment: Deployment) -> None:
    st, archive, lake = deployment.stack, deployment.archive, deployment.lake
    n = 0
    for i, day in enumerate(DAYS):  # two wire stories a day, a feed snapshot on day 2, a repeat on day 3
        for _ in range(2):
            archive.put(f"{day:%Y/%m/%d}/story-{n:03d}.txt", wire_story(n, day))
            n += 1
        if i == 1:
            archive.put(f"{day:%Y/%m/%d}/trade-feed.xml", snapshot(day))
        if i == 2:
            archive.put(f"{day:%Y/%m/%d}/story-repeat.txt", wire_story(1, DAYS[0]))
    first, last = DAYS[0].isoformat(), DAYS[-1].isoformat()
    states = st.backfill("wire_backfill", first, last, "--max-active-runs", "3")
    assert states == {d.isoformat(): "success" for d in DAYS}, f"{states}\n{st.task_errors()}"

    counts = {d: read_manifest(lake, manifest_key("backfill", d.isoformat())).counts for d in DAYS}
    assert sum(c["new"] for c in counts.values()) == 8  # 6 wire stories + 2 snapshot items
    assert sum(c["duplicate"] + c["batch_duplicate"] for c in counts.values()) == 1  # the repeat
    report = validate(lake, DAYS[0], DAYS[-1])
    assert report.ok and report.manifests == 3, report.to_dict()
    events = [e for e in st.asset_events("wire_backfill")]
    assert sorted(e["extra"]["label"] for e in events) == [first, DAYS[1].isoformat(), last]
    # unpaused for the whole backfill, and still no scheduled run: wire_backfill is not scheduled by default
    assert {kind for _, kind in st.runs("wire_backfill").values()} == {"backfill"}

    # every lake task (both DAGs, both workers) ran alone: the one-slot pool holds across workers
    lake_tasks = sorted(
        (start, end, host)
        for start, end, host in st.query(
            "select start_date, end_date, hostname from task_instance where pool = 'wirefeed_s3'"
            " and state = 'success'"
        )
    )
    assert len(lake_tasks) >= 3 + 6
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(lake_tasks)), lake_tasks
    splits = [st.xcom("wire_backfill", d.isoformat(), "ingest_day")["seconds"] for d in DAYS]
    hosts = sorted(
        st.task_instances("wire_backfill", d.isoformat())[("ingest_day", -1)]["hostname"] for d in DAYS
    )
    print(f"\nwire_backfill ingest_day split (read+parse / land, s): {splits}; hosts {hosts}")

    # a forced re-ingest of one day rewrites the same objects
    day = DAYS[1].isoformat()
    objects = {(o.key, o.size) for o in lake.list("stories/")}
    before = read_manifest(lake, manifest_key("backfill", day))
    again = st.backfill(
        "wire_backfill", day, day, "--reprocess-behavior", "completed", "--dag-run-conf", '{"force": true}'
    )
    assert again == {day: "success"}, st.task_errors()
    after = read_manifest(lake, manifest_key("backfill", day))
    assert after.run_id != before.run_id and after.objects == before.objects and after.counts == before.counts
    assert {(o.key, o.size) for o in lake.list("stories/")} == objects

    # `wirefeed backfill` over the same archive into another lake lands the same stories
    other = f"s3://{deployment.bucket}/cli-lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WIREFEED_")}
    out = subprocess.run(
        [str(REPO / ".venv/bin/wirefeed"), "backfill", "--archive", deployment.archive.uri(),
         "--from", first, "--to", last, "--lake", other, "--workers", "2"],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    backfilled = {v for v in versions(lake) if v in versions(open_lake(other, deployment.settings))}
    assert len(backfilled) == 8


def test_a_day_is_done_only_for_the_archive_listing_it_saw(deployment: Deployment) -> None:
    st, archive, lake = deployment.stack, deployment.archive, deployment.lake
    late, bad = LATE.isoformat(), BAD.isoformat()
    archive.put(f"{BAD:%Y/%m/%d}/bad-1.txt", wire_story(40, BAD))
    archive.put(f"{BAD:%Y/%m/%d}/bad-2.txt", wire_story(41, BAD))

    # 1. the late day has no data yet; the other day is read with a wrong layout: every input rejected
    states = st.backfill("wire_backfill", late, bad, "--dag-run-conf", '{"layout": "jsonl"}')
    assert states == {late: "success", bad: "failed"}, st.task_errors()
    empty = st.task_instances("wire_backfill", late)
    assert st.xcom("wire_backfill", late, "ingest_day")["reason"] == "empty"
    assert empty[("validate_day", -1)]["state"] == "skipped"  # nothing landed: no Asset event
    failed = st.task_instances("wire_backfill", bad)[("ingest_day", -1)]
    assert (failed["state"], failed["try_number"]) == ("failed", 1)  # a bad input is not retried
    assert not lake.exists(manifest_key("backfill", late)) and not lake.exists(manifest_key("backfill", bad))
    events = len(st.asset_events("wire_backfill"))

    # 2. data arrives for the late day; both days run again, with the layout detected: both land (a rerun
    # keeps its run's conf unless the backfill gives a new one)
    for n in (50, 51):
        archive.put(f"{LATE:%Y/%m/%d}/late-{n}.txt", wire_story(n, LATE))
    conf = ("--dag-run-conf", '{"layout": null}')
    states = st.backfill("wire_backfill", late, bad, "--reprocess-behavior", "completed", *conf)
    assert states == {late: "success", bad: "success"}, st.task_errors()
    landed = read_manifest(lake, manifest_key("backfill", late))
    assert landed.counts["new"] == 2 and read_manifest(lake, manifest_key("backfill", bad)).counts["new"] == 2
    assert len(st.asset_events("wire_backfill")) == events + 2

    # 3. nothing changed: both days are skipped, nothing rewritten, no Asset event
    states = st.backfill("wire_backfill", late, bad, "--reprocess-behavior", "completed")
    assert states == {late: "success", bad: "success"}
    assert st.xcom("wire_backfill", late, "ingest_day")["reason"] == "unchanged"
    assert st.task_instances("wire_backfill", late)[("validate_day", -1)]["state"] == "skipped"
    assert read_manifest(lake, manifest_key("backfill", late)).run_id == landed.run_id
    assert len(st.asset_events("wire_backfill")) == events + 2

    # 4. one more story for the late day: only it is read, the day's earlier stories are kept
    before = versions(lake)
    archive.put(f"{LATE:%Y/%m/%d}/late-52.txt", wire_story(52, LATE))
    states = st.backfill("wire_backfill", late, late, "--reprocess-behavior", "completed")
    assert states == {late: "success"}, st.task_errors()
    summary = st.xcom("wire_backfill", late, "ingest_day")
    assert (summary["inputs"], summary["carried"]) == (1, 2)
    assert summary["stories"]["new"] == 1 and summary["stories"]["kept"] == 2
    assert versions(lake) > before and len(versions(lake) - before) == 1
    listing = read_manifest(lake, manifest_key("backfill", late)).source_info["listing"]  # type: ignore[index]
    assert len(listing["inputs"]) == 3 and all(e[2] for e in listing["inputs"])  # S3 ETags
    assert validate(lake).ok
    (event,) = [e for e in st.asset_events("wire_backfill") if e["extra"]["label"] == late][-1:]
    assert event["extra"]["counts"]["kept"] == 2 and event["extra"]["rows"] == 3


def test_cancel_a_backfill_then_rerun_what_it_left(deployment: Deployment) -> None:
    """The operator's path (README, "Deploying"): backfill create, monitor, cancel (REST API), rerun."""
    st, archive, lake = deployment.stack, deployment.archive, deployment.lake
    days = [(date(2026, 10, 25) + timedelta(days=i)).isoformat() for i in range(4)]
    for i, day in enumerate(days):
        archive.put(f"{day.replace('-', '/')}/cancel-{i}.txt", wire_story(70 + i, date.fromisoformat(day)))
    before = versions(lake)
    st.cli("backfill", "create", "--dag-id", "wire_backfill", "--from-date", days[0], "--to-date", days[-1],
           "--max-active-runs", "1")  # fmt: skip
    (running,) = [
        b
        for b in st.api("GET", "/api/v2/backfills?dag_id=wire_backfill")["backfills"]
        if not b["completed_at"]
    ]
    cancelled = st.api("PUT", f"/api/v2/backfills/{running['id']}/cancel")
    assert cancelled["completed_at"] and cancelled["is_paused"]

    def settled() -> dict[str, str] | None:
        runs = {d: s for d, (s, _) in st.runs("wire_backfill").items() if d in days}
        return runs if len(runs) == 4 and set(runs.values()) <= {"success", "failed"} else None

    runs = st.wait("the cancelled backfill's runs to settle", settled)
    assert "failed" in runs.values(), runs  # runs still queued when it was cancelled
    for day, state in runs.items():  # a run that had started finished; the others wrote nothing
        assert lake.exists(manifest_key("backfill", day)) == (state == "success"), (day, state)
    out = st.cli("dags", "list-runs", "wire_backfill", "-o", "json")
    listed = json.loads(out.strip().splitlines()[-1])  # after Airflow's warnings
    assert {r["logical_date"][:10]: r["state"] for r in listed if r["logical_date"][:10] in days} == runs

    states = st.backfill("wire_backfill", days[0], days[-1], "--reprocess-behavior", "failed")
    assert states == dict.fromkeys(days, "success"), st.task_errors()
    assert all(lake.exists(manifest_key("backfill", day)) for day in days)
    assert len(versions(lake) - before) == 4 and validate(lake).ok


def test_wire_backfill_scheduled_by_configuration(deployment: Deployment) -> None:
    """WIREFEED_BACKFILL_START (read when the DAG is parsed) turns scheduling on: a scheduled run per day,
    after the latest backfill run (Airflow's catchup continues from the latest backfill or scheduled run)."""
    st, archive, lake = deployment.stack, deployment.archive, deployment.lake
    first, second = date(2026, 11, 5), date(2026, 11, 6)  # after every day backfilled above
    archive.put(f"{first:%Y/%m/%d}/sched-1.txt", wire_story(60, first))
    env = {"WIREFEED_BACKFILL_START": first.isoformat(), "WIREFEED_BACKFILL_END": second.isoformat()}
    st.restart("dag-processor", env)
    runs = st.wait(
        "the scheduled wire_backfill runs",
        lambda: (
            (r := {d: v for d, v in st.runs("wire_backfill").items() if d >= first.isoformat()})
            and len(r) == 2
            and all(s in ("success", "failed") for s, _ in r.values())
            and r
        ),
    )
    assert runs == {d.isoformat(): ("success", "scheduled") for d in (first, second)}, st.task_errors()
    assert lake.exists(manifest_key("backfill", first.isoformat()))
    assert not lake.exists(manifest_key("backfill", second.isoformat()))  # empty: nothing written
    assert validate(lake).ok
