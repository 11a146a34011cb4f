"""wire_daily under real Airflow (dag.test(), SQLite metadata DB in a throw-away AIRFLOW_HOME), real MinIO,
feeds served over loopback HTTP. The DAG run happens in a subprocess so its Airflow configuration (home,
DB, connections) is its own; S3 credentials reach the tasks ONLY through the Airflow connection."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.lake.landing import manifest_key, read_manifest
from pipeline.lake.parquet import read_stories
from pipeline.lake.store import open_lake
from pipeline.lake.validate import validate
from tests.feedserver import FeedServer, Route
from tests.integration.conftest import airflow_env, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
DAY = date(2026, 11, 20)  # the samples are dated this UTC day

RUNNER = r"""
import json, sys
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from airflow.dag_processing.dagbag import BundleDagBag
from airflow.models.asset import AssetEvent, AssetModel
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

dags = Path(sys.argv[1])
logical = None if sys.argv[2] == "none" else datetime.fromisoformat(sys.argv[2])
bag = BundleDagBag(dag_folder=str(dags), bundle_path=dags, bundle_name="dags-folder")
assert not bag.import_errors, bag.import_errors
dr = bag.dags["wire_daily"].test(logical_date=logical)
with create_session() as session:
    tis = session.scalars(select(TaskInstance).where(TaskInstance.run_id == dr.run_id)).all()
    xcoms = {}
    for task_id in ("land", "validate"):
        row = session.scalars(
            XComModel.get_many(run_id=dr.run_id, dag_ids="wire_daily", task_ids=task_id, key="return_value")
        ).first()
        xcoms[task_id] = XComModel.deserialize_value(row) if row is not None else None
    events = session.execute(
        select(AssetModel.name, AssetEvent.source_task_id, AssetEvent.extra)
        .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        .where(AssetEvent.source_run_id == dr.run_id)
    ).all()
    fetch_xcom_keys = session.scalars(
        select(XComModel.key).where(XComModel.run_id == dr.run_id, XComModel.task_id == "fetch_feed")
    ).all()
print("RESULT " + json.dumps({
    "state": str(dr.state),
    "logical_date": dr.logical_date and dr.logical_date.isoformat(),
    "data_interval": [dr.data_interval_start and dr.data_interval_start.isoformat(),
                      dr.data_interval_end and dr.data_interval_end.isoformat()],
    "run_after": dr.run_after.isoformat(),
    "tis": sorted([ti.task_id, ti.map_index, str(ti.state), ti.pool, ti.try_number] for ti in tis),
    "xcoms": xcoms,
    "asset_events": sorted([name, task, extra] for name, task, extra in events),
    "fetch_xcom_keys": sorted(fetch_xcom_keys),
}, default=str))
"""


def _airflow_env(home: Path, s3: Settings, lake: str, feeds: Path) -> dict[str, str]:
    env = airflow_env(home, s3, lake)
    env.update(
        {
            "WIREFEED_FEEDS": str(feeds),
            "WIREFEED_ALLOW_PRIVATE_ADDRESSES": "true",  # the feeds are on 127.0.0.1
            "WIREFEED_MAX_RETRIES": "0",
            "WIREFEED_TOTAL_TIMEOUT": "20",
        }
    )
    return env


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> str:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO)
    assert out.returncode == 0, f"{cmd[:3]} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    return out.stdout


def _dag_test(env: dict[str, str], logical: datetime | None) -> dict[str, Any]:
    arg = logical.isoformat() if logical else "none"
    stdout = _run([sys.executable, "-c", RUNNER, str(REPO / "dags"), arg], env, timeout=300)
    line = next(ln for ln in stdout.splitlines() if ln.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    return result


def landed_extra(manifest: Any, lake: Any) -> dict[str, Any]:
    return {
        "job": "daily",
        "interval_start": manifest.interval_start,
        "interval_end": manifest.interval_end,
        "label": manifest.label,
        "counts": manifest.counts,
        "rows": manifest.rows,
        "manifest": lake.uri(manifest.key),
    }


def test_wire_daily_lands_a_validated_interval(
    tmp_path: Path, s3_settings: Settings, s3_lake_uri: str
) -> None:
    home = tmp_path / "airflow"
    with FeedServer() as server:
        server.route("/rss.xml", Route(body=(SAMPLES / "rss-trade-desk.xml").read_bytes()))
        server.route(
            "/atom.xml",
            Route(body=(SAMPLES / "atom-markets.xml").read_bytes(), content_type="application/atom+xml"),
        )
        server.route(
            "/feed.json",
            Route(body=(SAMPLES / "jsonfeed-policy.json").read_bytes(), content_type="application/feed+json"),
        )
        server.route("/gone.xml", Route(status=404, body=b"not here", content_type="text/plain"))
        feeds = tmp_path / "feeds.yaml"
        feeds.write_text(
            "feeds:\n"
            f"  - {{id: rss, url: '{server.url('/rss.xml')}'}}\n"
            f"  - {{id: atom, url: '{server.url('/atom.xml')}'}}\n"
            f"  - {{id: jsonfeed, url: '{server.url('/feed.json')}'}}\n"
            f"  - {{id: gone, url: '{server.url('/gone.xml')}'}}\n"
            f"  - {{id: wire, url: '{SAMPLES / 'wire-madrid-talks.txt'}', local: true}}\n"
        )
        env = _airflow_env(home, s3_settings, s3_lake_uri, feeds)
        _run([str(REPO / ".venv/bin/airflow"), "db", "migrate"], env, timeout=300)
        for pool, slots in (("wirefeed_fetch", "4"), ("wirefeed_s3", "1")):
            _run([str(REPO / ".venv/bin/airflow"), "pools", "set", pool, slots, "wirefeed"], env, timeout=120)

        # a manual run with logical date D+1 owns the last complete day: [D, D+1)
        logical = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC) + timedelta(days=1)
        result = _dag_test(env, logical)
        fetched = {r.path for r in server.requests}
        lake = open_lake(s3_lake_uri, s3_settings)
        first_keys = {o.key for o in lake.list("stories/")}
        manifest = read_manifest(lake, manifest_key("daily", DAY.isoformat()))
        # rerunning the same interval replaces it: same story objects, same story versions
        again = _dag_test(env, logical)

    assert result["state"] == "success", result
    assert fetched == {"/rss.xml", "/atom.xml", "/feed.json", "/gone.xml"}
    start, end = (datetime.fromisoformat(x) for x in result["data_interval"])
    assert (start.date(), end - start) == (DAY, timedelta(days=1))
    tis = result["tis"]
    assert sorted(t[0] for t in tis) == ["fetch_feed"] * 5 + ["land", "load_feeds", "validate"]
    assert all(t[2] == "success" for t in tis), tis
    assert {t[3] for t in tis if t[0] == "fetch_feed"} == {"wirefeed_fetch"}

    # the interval the land task actually used, as it reported it and as it wrote it into the manifest
    landed = result["xcoms"]["land"]
    assert landed["label"] == DAY.isoformat()
    assert datetime.fromisoformat(manifest.interval_start) == datetime(2026, 11, 20, tzinfo=UTC)
    assert datetime.fromisoformat(manifest.interval_end) == datetime(2026, 11, 21, tzinfo=UTC)
    statuses = {f["feed_id"]: f["status"] for f in manifest.feeds}
    assert statuses.pop("gone") == "failed"
    assert set(statuses.values()) == {"ok"}, statuses
    assert manifest.counts["new"] == 3 + 2 + 2 + 1

    stories = [s for o in manifest.objects for s in read_stories(lake.get(o["key"]))]
    assert len(stories) == 8
    assert {s["published_at"].date() for s in stories if s["published_at"]} == {DAY}
    assert result["xcoms"]["validate"]["ok"] is True
    # published once validated, naming what landed
    assert result["asset_events"] == [["wirefeed_stories", "validate", landed_extra(manifest, lake)]]
    assert result["fetch_xcom_keys"] == ["return_value"] * 5  # one XCom per fetch, not one per key
    assert validate(lake, DAY, DAY).ok

    assert again["state"] == "success", again
    rerun = read_manifest(lake, manifest_key("daily", DAY.isoformat()))
    assert {f["feed_id"]: f["status"] for f in rerun.feeds}["gone"] == "skipped"  # in backoff after a 404
    assert {o.key for o in lake.list("stories/")} == first_keys == {o["key"] for o in rerun.objects}
    versions = {(s["story_id"], s["content_hash"]) for s in stories}
    assert {
        (s["story_id"], s["content_hash"]) for o in rerun.objects for s in read_stories(lake.get(o["key"]))
    } == (versions)
    assert validate(lake, DAY, DAY).ok


def test_manual_run_without_logical_date_owns_the_utc_day_of_run_after(
    tmp_path: Path, s3_settings: Settings, s3_lake_uri: str
) -> None:
    """No logical date -> no data_interval_* in the context: the run owns [run_after's UTC day, +1 day)."""
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {{id: wire, url: '{SAMPLES / 'wire-madrid-talks.txt'}', local: true}}\n")
    env = _airflow_env(tmp_path / "airflow", s3_settings, s3_lake_uri, feeds)
    _run([str(REPO / ".venv/bin/airflow"), "db", "migrate"], env, timeout=300)
    result = _dag_test(env, None)
    assert result["state"] == "success", result
    assert result["logical_date"] is None and result["data_interval"] == [None, None]
    day = datetime.fromisoformat(result["run_after"]).astimezone(UTC).date()
    assert result["xcoms"]["land"]["label"] == day.isoformat()
    lake = open_lake(s3_lake_uri, s3_settings)
    manifest = read_manifest(lake, manifest_key("daily", day.isoformat()))
    assert datetime.fromisoformat(manifest.interval_start) == datetime(
        day.year, day.month, day.day, tzinfo=UTC
    )
    assert manifest.counts["new"] == 1


def test_transient_errors_retry_with_backoff_and_fatal_errors_fail_fast(
    tmp_path: Path, s3_settings: Settings, s3_lake_uri: str
) -> None:
    """Real task runs: an unreachable object store (RetriableError) is retried `retries` times; a missing
    feeds file (ConfigError) fails on the first try. WIREFEED_RETRY_DELAY_SECONDS=1 keeps backoff short."""
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {{id: wire, url: '{SAMPLES / 'wire-madrid-talks.txt'}', local: true}}\n")
    env = _airflow_env(tmp_path / "airflow", s3_settings, s3_lake_uri, feeds)
    env["WIREFEED_RETRY_DELAY_SECONDS"] = "1"
    _run([str(REPO / ".venv/bin/airflow"), "db", "migrate"], env, timeout=300)

    # transient: the connection names an endpoint where nothing listens
    conn = json.loads(env["AIRFLOW_CONN_WIREFEED_S3"])
    conn["extra"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    down = {**env, "AIRFLOW_CONN_WIREFEED_S3": json.dumps(conn)}
    result = _dag_test(down, datetime(2026, 11, 21, tzinfo=UTC))
    assert result["state"] == "failed"
    states = {t[0]: (t[2], t[4]) for t in result["tis"]}
    assert states["load_feeds"] == ("failed", 4), states  # 1 try + 3 retries
    assert states["land"][0] == "upstream_failed"

    # fatal: a configuration error is not retried
    broken = {**env, "WIREFEED_FEEDS": str(tmp_path / "missing.yaml")}
    result = _dag_test(broken, datetime(2026, 11, 22, tzinfo=UTC))
    assert result["state"] == "failed"
    states = {t[0]: (t[2], t[4]) for t in result["tis"]}
    assert states["load_feeds"] == ("failed", 1), states
