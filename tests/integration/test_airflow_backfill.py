"""wire_backfill through the real scheduler path: `airflow api-server`, `airflow scheduler` (LocalExecutor)
and `airflow dag-processor` as subprocesses on SQLite in a throw-away AIRFLOW_HOME, `airflow backfill create`
over three days of a small wire-story archive, landing into MinIO. Then: every day has its manifest,
validation passes, re-running one day (forced re-ingest) changes no object, and `wirefeed backfill` over the
same archive into another lake gives the same stories."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.lake.landing import manifest_key, read_manifest
from pipeline.lake.parquet import read_stories
from pipeline.lake.store import Lake, open_lake
from pipeline.lake.validate import validate
from tests.feedserver import Item, rss
from tests.integration.conftest import airflow_env, free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(REPO / ".venv" / "bin" / "airflow")
DAYS = [date(2026, 10, 5), date(2026, 10, 6), date(2026, 10, 7)]
WAIT_RUNS = 420.0  # seconds: an upper bound, never an assertion about speed

TOPIC_LINES = [
    "Negotiators discussed tariffs on steel and aluminium and a pause on reciprocal tariff increases.",
    "Exporters of rare earth elements reported delays in licences for magnet shipments to car makers.",
    "The future of TikTok and the divestiture deadline set for its parent company ByteDance was debated.",
    "Semiconductor makers reviewed export controls on advanced chips and chipmaking equipment.",
]


def _story(n: int, day: date) -> str:
    first = TOPIC_LINES[n % len(TOPIC_LINES)]
    second = TOPIC_LINES[(n + 1) % len(TOPIC_LINES)]
    return (
        f"Archive story {n} from the trade desk on {day.isoformat()}. {first} Officials said the talks in "
        f"round {n} would continue next week with working groups meeting in several capitals.\n"
        f"{second} Analysts expect further announcements after the meetings conclude, according to people "
        f"familiar with the schedule for round {n}.\n"
        "📌 Reference Map:\n"
        "- Paragraph 1 – [1], [2]\n"
        "- Paragraph 2 – [2]\n"
        "Source: Test Wire Services\n"
    )


def _snapshot(day: date) -> bytes:
    items = [
        Item(
            guid=f"snap-{day}-{i}",
            title=f"Snapshot story {i}: tariff talks resume",
            body=f"{TOPIC_LINES[i]} {TOPIC_LINES[i + 1]} Item {i} of the archived feed snapshot.",
            link=f"https://snapshots.example/{day}/{i}",
            published=f"{day:%a, %d %b %Y} 0{i + 8}:00:00 GMT",
        )
        for i in range(2)
    ]
    return rss("Archived Trade Feed", items)


def _write_archive(root: Path) -> None:
    """Under YYYY/MM/DD/: two wire stories a day, a feed snapshot (two items) on the second day, and story 1
    again on the third day (archived twice: must land once)."""
    n = 0
    for i, day in enumerate(DAYS):
        folder = root / f"{day:%Y/%m/%d}"
        folder.mkdir(parents=True)
        for _ in range(2):
            (folder / f"story-{n:03d}.txt").write_text(_story(n, day), encoding="utf-8")
            n += 1
        if i == 1:
            (folder / "trade-feed.xml").write_bytes(_snapshot(day))
        if i == 2:
            (folder / "story-repeat.txt").write_text(_story(1, DAYS[0]), encoding="utf-8")


def _env(home: Path, s3: Settings, lake: str, archive: Path, api_port: int) -> dict[str, str]:
    env = airflow_env(home, s3, lake)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "WIREFEED_ARCHIVE": str(archive),
            "WIREFEED_BACKFILL_ACTIVE_RUNS": "3",
            # catchup stays off and no scheduled run can be due after the archive's last day
            "WIREFEED_BACKFILL_END": DAYS[-1].isoformat(),
        }
    )
    return env


def _cli(env: dict[str, str], *args: str, timeout: float = 180) -> str:
    out = subprocess.run(
        [AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO
    )
    assert out.returncode == 0, f"airflow {' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


class Services:
    """api-server, scheduler and dag-processor, each in its own process group, logs in AIRFLOW_HOME."""

    def __init__(self, env: dict[str, str], home: Path) -> None:
        self.env, self.home = env, home
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        self.procs[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env=self.env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"airflow {name} exited ({proc.returncode}):\n{self.tail(name)}"

    def task_errors(self, n: int = 1500) -> str:
        """The end of every task attempt log that reports an error (task logs are JSON lines)."""
        out = []
        for path in sorted((self.home / "logs").glob("dag_id=*/run_id=*/task_id=*/attempt=*.log")):
            text = path.read_text(errors="replace")
            if '"error"' in text or "Traceback" in text:
                out.append(f"--- {path.relative_to(self.home)}\n{text[-n:]}")
        return "\n".join(out)

    def tail(self, name: str, n: int = 4000) -> str:
        path = self.home / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _wait(what: str, check: Callable[[], Any], services: Services, timeout: float = WAIT_RUNS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        services.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n}\n{services.tail(n, 2500)}" for n in services.procs)
            pytest.fail(f"timed out waiting for {what}\n{logs}")
        time.sleep(2)


def _query(db: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        try:
            return list(conn.execute(sql, params))
        except sqlite3.OperationalError:  # locked or not migrated yet: ask again later
            return []


def _runs(db: Path) -> dict[str, str]:
    rows = _query(db, "select logical_date, state from dag_run where dag_id = 'wire_backfill'")
    return {str(ld)[:10]: str(state) for ld, state in rows}


def _backfills_done(db: Path, count: int) -> bool:
    rows = _query(db, "select completed_at from backfill where dag_id = 'wire_backfill'")
    return len(rows) == count and all(r[0] is not None for r in rows)


def _story_objects(lake: Lake) -> set[tuple[str, str, int]]:
    return {(o.key, o.sha256, o.size) for o in lake.list("stories/")}


def _versions(lake: Lake) -> set[tuple[str, str]]:
    return {
        (s["story_id"], s["content_hash"])
        for o in lake.list("stories/")
        for s in read_stories(lake.get(o.key))
    }


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Services]]:
    started: list[Services] = []

    def make(env: dict[str, str]) -> Services:
        svc = Services(env, Path(env["AIRFLOW_HOME"]))
        started.append(svc)
        return svc

    yield make
    for svc in started:
        svc.stop()


def _start_airflow(env: dict[str, str], services: Callable[[dict[str, str]], Services]) -> Services:
    """Migrate the DB, create the pools, start api-server + dag-processor + scheduler, wait for the parse."""
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(exist_ok=True)
    _cli(env, "db", "migrate", timeout=300)
    _cli(env, "pools", "set", "wirefeed_fetch", "4", "wirefeed feed fetching")
    _cli(env, "pools", "set", "wirefeed_s3", "1", "wirefeed lake writes (one at a time)")
    svc = services(env)
    svc.start("api-server", "api-server", "--host", "127.0.0.1", "--port", env["AIRFLOW__API__PORT"])
    svc.start("dag-processor", "dag-processor")
    svc.start("scheduler", "scheduler")
    db = home / "airflow.db"
    _wait(
        "wire_backfill to be parsed",
        lambda: _query(db, "select 1 from serialized_dag where dag_id = 'wire_backfill'"),
        svc,
    )
    return svc


def test_backfill_create_runs_every_day_through_the_scheduler(
    tmp_path: Path,
    s3_settings: Settings,
    s3_lake_uri: str,
    s3_bucket: str,
    services: Callable[[dict[str, str]], Services],
) -> None:
    home, archive = tmp_path / "airflow", tmp_path / "archive"
    _write_archive(archive)
    env = _env(home, s3_settings, s3_lake_uri, archive, free_port())
    db = home / "airflow.db"
    svc = _start_airflow(env, services)
    _cli(env, "dags", "unpause", "wire_backfill")

    first, last = DAYS[0].isoformat(), DAYS[-1].isoformat()
    _cli(env, "backfill", "create", "--dag-id", "wire_backfill", "--from-date", first, "--to-date", last,
         "--max-active-runs", "3")  # fmt: skip
    runs = _wait(
        "every backfill run to finish",
        lambda: (
            (r := _runs(db)) and len(r) == 3 and all(s in ("success", "failed") for s in r.values()) and r
        ),
        svc,
    )
    assert runs == {d.isoformat(): "success" for d in DAYS}, f"{runs}\n{svc.task_errors()}"
    _wait("the backfill to be marked complete", lambda: _backfills_done(db, 1), svc, timeout=120)

    lake = open_lake(s3_lake_uri, s3_settings)
    for day in DAYS:
        m = read_manifest(lake, manifest_key("backfill", day.isoformat()))
        assert (m.job, m.label) == ("backfill", day.isoformat())
    counts = {d: read_manifest(lake, manifest_key("backfill", d.isoformat())).counts for d in DAYS}
    assert sum(c["new"] for c in counts.values()) == 8  # 6 wire stories + 2 snapshot items; one repeat
    assert sum(c["duplicate"] + c["batch_duplicate"] for c in counts.values()) == 1
    report = validate(lake, DAYS[0], DAYS[-1])
    assert report.ok, report.to_dict()
    assert report.manifests == 3
    objects, manifest_before = (
        _story_objects(lake),
        read_manifest(lake, manifest_key("backfill", DAYS[1].isoformat())),
    )

    # re-run one day, forcing a real re-ingest: nothing in the lake changes
    day = DAYS[1].isoformat()
    _cli(env, "backfill", "create", "--dag-id", "wire_backfill", "--from-date", day, "--to-date", day,
         "--reprocess-behavior", "completed", "--dag-run-conf", json.dumps({"force": True}))  # fmt: skip
    _wait("the re-run backfill to complete", lambda: _backfills_done(db, 2), svc)
    assert _runs(db) == {d.isoformat(): "success" for d in DAYS}
    tries = _query(
        db,
        "select max(try_number) from task_instance where dag_id = 'wire_backfill' and task_id = 'ingest_day' "
        "and run_id in (select run_id from dag_run where dag_id = 'wire_backfill' and logical_date like ?)",
        f"{day}%",
    )
    assert tries and tries[0][0] >= 2, tries  # the day really ran again
    manifest_after = read_manifest(lake, manifest_key("backfill", day))
    assert manifest_after.created_at != manifest_before.created_at  # re-landed, not skipped
    assert manifest_after.objects == manifest_before.objects
    assert manifest_after.counts == manifest_before.counts
    assert _story_objects(lake) == objects
    assert validate(lake, DAYS[0], DAYS[-1]).ok

    # the CLI over the same archive into another lake lands the same stories
    other = f"s3://{s3_bucket}/cli-lake"
    cli_env = {k: v for k, v in os.environ.items() if not k.startswith("WIREFEED_")}
    out = subprocess.run(
        [str(REPO / ".venv/bin/wirefeed"), "backfill", "--archive", str(archive),
         "--from", first, "--to", last, "--lake", other, "--workers", "2"],
        env=cli_env, capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    cli_lake = open_lake(other, s3_settings)
    assert _versions(cli_lake) == _versions(lake)
    assert len(_versions(lake)) == 8


def test_catchup_runs_every_day_from_the_configured_start(
    tmp_path: Path,
    s3_settings: Settings,
    s3_lake_uri: str,
    services: Callable[[dict[str, str]], Services],
) -> None:
    """WIREFEED_BACKFILL_START turns catchup on: unpausing creates a scheduled run per day up to the end."""
    archive = tmp_path / "archive"
    _write_archive(archive)
    env = _env(tmp_path / "airflow", s3_settings, s3_lake_uri, archive, free_port())
    env["WIREFEED_BACKFILL_START"] = DAYS[0].isoformat()
    db = tmp_path / "airflow" / "airflow.db"
    svc = _start_airflow(env, services)
    _cli(env, "dags", "unpause", "wire_backfill")
    runs = _wait(
        "the catchup runs to finish",
        lambda: (
            (r := _runs(db)) and len(r) == 3 and all(s in ("success", "failed") for s in r.values()) and r
        ),
        svc,
    )
    assert runs == {d.isoformat(): "success" for d in DAYS}, f"{runs}\n{svc.task_errors()}"
    kinds = _query(db, "select distinct run_type from dag_run where dag_id = 'wire_backfill'")
    assert kinds == [("scheduled",)]
    lake = open_lake(s3_lake_uri, s3_settings)
    for day in DAYS:
        assert lake.exists(manifest_key("backfill", day.isoformat()))
    assert validate(lake, DAYS[0], DAYS[-1]).ok
    assert len(_versions(lake)) == 8
