"""DagBag tests for dags/: both DAGs import cleanly and have the promised schedule, structure and policies."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DAGS = REPO / "dags"


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "pipeline.jobs.airflow_support.SQLITE_CONNECT_ARGS",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield home
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def dagbag(airflow_home: Path) -> Any:
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS), bundle_path=DAGS, bundle_name="wirefeed-test")


def test_dags_import_without_errors(dagbag: Any) -> None:
    assert dagbag.import_errors == {}
    assert {"wire_daily", "wire_backfill"} <= set(dagbag.dag_ids)


@pytest.mark.parametrize("dag_id", ["wire_daily", "wire_backfill"])
def test_schedule_is_daily_data_interval_in_utc(dagbag: Any, dag_id: str) -> None:
    from airflow.sdk import CronDataIntervalTimetable
    from airflow.serialization.encoders import coerce_to_core_timetable

    dag = dagbag.dags[dag_id]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    core = coerce_to_core_timetable(dag.timetable)
    # a scheduled run for day D owns exactly [D, D+1) UTC
    info = core.next_dagrun_info(
        last_automated_data_interval=None,
        restriction=_restriction(datetime(2026, 3, 5, tzinfo=UTC)),
    )
    assert info is not None
    assert info.data_interval.start == datetime(2026, 3, 5, tzinfo=UTC)
    assert info.data_interval.end - info.data_interval.start == timedelta(days=1)
    assert info.logical_date == info.data_interval.start


def _restriction(earliest: datetime) -> Any:
    from airflow.timetables.base import TimeRestriction

    return TimeRestriction(earliest=earliest, latest=None, catchup=True)


def test_daily_structure(dagbag: Any) -> None:
    dag = dagbag.dags["wire_daily"]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert set(dag.task_ids) == {"load_feeds", "fetch_feed", "land", "validate"}
    assert dag.get_task("fetch_feed").upstream_task_ids == {"load_feeds"}
    assert dag.get_task("land").upstream_task_ids == {"fetch_feed"}
    assert dag.get_task("validate").upstream_task_ids == {"land"}
    # fetch is dynamically mapped over the feed list
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    assert isinstance(dag.get_task("fetch_feed"), MappedOperator)
    assert dag.get_task("fetch_feed").pool == "wirefeed_fetch"
    for task_id in ("load_feeds", "land", "validate"):
        assert dag.get_task(task_id).pool == "wirefeed_s3"


def test_backfill_structure(dagbag: Any) -> None:
    dag = dagbag.dags["wire_backfill"]
    assert set(dag.task_ids) == {"ingest_day", "validate_day"}
    assert dag.get_task("validate_day").upstream_task_ids == {"ingest_day"}
    assert dag.max_active_runs == 4
    assert {"archive", "force", "layout"} <= set(dag.params.keys())
    for task in dag.tasks:
        assert task.pool == "wirefeed_s3"


@pytest.mark.parametrize("dag_id", ["wire_daily", "wire_backfill"])
def test_retries_backoff_timeouts_on_every_task(dagbag: Any, dag_id: str) -> None:
    from airflow.sdk import ExceptionRetryPolicy, RetryAction

    from pipeline.errors import ConfigError, FatalError, RetriableError

    dag = dagbag.dags[dag_id]
    for task in dag.tasks:
        assert task.retries >= 2, task.task_id
        assert task.retry_exponential_backoff >= 2.0, task.task_id
        assert task.max_retry_delay is not None, task.task_id
        assert task.execution_timeout is not None, task.task_id
        assert timedelta(0) < task.execution_timeout <= timedelta(hours=1), task.task_id
        policy = task.retry_policy
        assert isinstance(policy, ExceptionRetryPolicy), task.task_id
        # transient errors retry, everything else fails at once
        assert policy.evaluate(RetriableError("503"), 1, 4).action is RetryAction.RETRY
        assert policy.evaluate(ConnectionResetError(), 1, 4).action is RetryAction.RETRY
        assert policy.evaluate(FatalError("bug"), 1, 4).action is RetryAction.FAIL
        assert policy.evaluate(ConfigError("bad"), 1, 4).action is RetryAction.FAIL
        assert policy.evaluate(KeyError("x"), 1, 4).action is RetryAction.FAIL


@pytest.mark.parametrize("dag_id", ["wire_daily", "wire_backfill"])
def test_publishes_stories_asset(dagbag: Any, dag_id: str) -> None:
    from airflow.sdk import Asset

    dag = dagbag.dags[dag_id]
    outlets = [o for task in dag.tasks for o in task.outlets]
    assert outlets and all(isinstance(o, Asset) for o in outlets)
    assert {o.name for o in outlets} == {"wirefeed_stories"}
    # only the final (validate) task publishes: consumers see validated data
    final = [t for t in dag.tasks if not t.downstream_task_ids]
    assert [o.name for t in final for o in t.outlets] == ["wirefeed_stories"]


def test_fail_fast_maps_pipeline_errors(dagbag: Any) -> None:
    sys.path.insert(0, str(DAGS))
    try:
        from _common import fail_fast
    finally:
        sys.path.remove(str(DAGS))
    from airflow.sdk.exceptions import AirflowFailException

    from pipeline.errors import BadInputError, ConfigError, RetriableError

    def raising(exc: Exception) -> Any:
        @fail_fast
        def task() -> None:
            raise exc

        return task

    with pytest.raises(RetriableError):
        raising(RetriableError("timeout"))()
    for exc in (ConfigError("no lake"), BadInputError("empty", "empty body")):
        with pytest.raises(AirflowFailException):
            raising(exc)()


def test_serialized_dags_keep_pools_timeouts_and_policy(dagbag: Any) -> None:
    """What the scheduler sees (the serialized DAG) still has the pools, timeouts and retry policy."""
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id in ("wire_daily", "wire_backfill"):
        data = DagSerialization.serialize_dag(dagbag.dags[dag_id])
        restored = DagSerialization.deserialize_dag(data)
        for task in restored.tasks:
            assert task.pool in ("wirefeed_fetch", "wirefeed_s3")
            assert task.execution_timeout is not None
            assert task.has_retry_policy
        assert restored.timetable.summary == "0 0 * * *"


def _parse_in_subprocess(env_extra: dict[str, str], code: str, airflow_home: Path) -> str:
    env = {**os.environ, **env_extra, "AIRFLOW_HOME": str(airflow_home)}
    prelude = (
        "from pathlib import Path\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        f"bag = BundleDagBag(dag_folder={str(DAGS)!r}, bundle_path=Path({str(DAGS)!r}), bundle_name='t')\n"
        "assert not bag.import_errors, bag.import_errors\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", prelude + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_backfill_catchup_and_active_runs_follow_environment(airflow_home: Path) -> None:
    code = (
        "d = bag.dags['wire_backfill']\n"
        "print(d.catchup, d.max_active_runs, d.start_date.date(), d.end_date and d.end_date.date())\n"
    )
    configured = {
        "WIREFEED_BACKFILL_START": "2026-01-05",
        "WIREFEED_BACKFILL_END": "2026-01-09",
        "WIREFEED_BACKFILL_ACTIVE_RUNS": "7",
    }
    assert _parse_in_subprocess(configured, code, airflow_home) == "True 7 2026-01-05 2026-01-09"
    only_start = {**configured, "WIREFEED_BACKFILL_END": "", "WIREFEED_BACKFILL_ACTIVE_RUNS": ""}
    assert _parse_in_subprocess(only_start, code, airflow_home) == "True 4 2026-01-05 None"
    unset = {k: "" for k in configured}  # not scheduled: end_date == start_date
    assert _parse_in_subprocess(unset, code, airflow_home) == "False 4 2026-01-01 2026-01-01"


def test_backfill_is_not_scheduled_by_default_but_backfills_any_day(dagbag: Any) -> None:
    """What the scheduler computes from the serialized DAG: no next run; backfill create still has every
    day of a range (it ignores end_date)."""
    from airflow.serialization.serialized_objects import DagSerialization

    dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dagbag.dags["wire_backfill"]))
    assert dag.next_dagrun_info(last_automated_run_info=None) is None
    assert dag.timetable.periodic  # Airflow refuses backfills of non-periodic DAGs
    infos = list(
        dag.iter_dagrun_infos_between(datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 10, 7, tzinfo=UTC))
    )
    assert [(i.data_interval.start.day, i.data_interval.end.day) for i in infos] == [(5, 6), (6, 7), (7, 8)]
    daily = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dagbag.dags["wire_daily"]))
    assert daily.next_dagrun_info(last_automated_run_info=None) is not None  # wire_daily is scheduled


@pytest.mark.parametrize("dag_id", ["wire_daily", "wire_backfill"])
def test_one_xcom_per_task_and_a_run_timeout(dagbag: Any, dag_id: str) -> None:
    dag = dagbag.dags[dag_id]
    assert timedelta(hours=1) <= dag.dagrun_timeout <= timedelta(hours=24)
    for task in dag.tasks:
        kwargs = task.partial_kwargs if hasattr(task, "partial_kwargs") else {}
        multiple = getattr(task, "multiple_outputs", kwargs.get("multiple_outputs"))
        assert multiple is False, task.task_id


def test_pool_names_can_be_overridden(airflow_home: Path) -> None:
    code = "print(sorted({t.pool for d in bag.dags.values() for t in d.tasks}))\n"
    env = {"WIREFEED_FETCH_POOL": "default_pool", "WIREFEED_S3_POOL": "default_pool"}
    assert _parse_in_subprocess(env, code, airflow_home) == "['default_pool']"


def test_dag_files_do_no_io_at_import(airflow_home: Path) -> None:
    """Parsing must not touch the lake, the feeds file or the network: point them at things that would
    fail loudly if used, and parse."""
    env = {
        "WIREFEED_LAKE": "s3://no-such-bucket-at-parse-time/lake",
        "WIREFEED_FEEDS": "/nonexistent/feeds.yaml",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "WIREFEED_ARCHIVE": "/nonexistent/archive",
    }
    code = "import sys; print(sorted(bag.dag_ids), 'pipeline.lake.store' in sys.modules)\n"
    assert _parse_in_subprocess(env, code, airflow_home) == "['wire_backfill', 'wire_daily'] False"


def test_interval_from_context_rules() -> None:
    from types import SimpleNamespace

    import pendulum

    from pipeline.jobs.airflow_support import interval_from_context

    d = datetime(2026, 11, 20, tzinfo=UTC)
    ctx = {
        "params": {"day": None},
        "data_interval_start": pendulum.instance(d),
        "data_interval_end": pendulum.instance(d + timedelta(days=1)),
    }
    iv = interval_from_context(ctx, "daily")
    assert (iv.start, iv.end, iv.label, type(iv.start)) == (d, d + timedelta(days=1), "2026-11-20", datetime)
    # explicit day wins
    assert interval_from_context({**ctx, "params": {"day": "2026-01-02"}}, "daily").label == "2026-01-02"
    # manual trigger without logical date: no data interval -> UTC day of run_after
    run = SimpleNamespace(run_after=datetime(2026, 11, 26, 23, 30, tzinfo=UTC), start_date=None)
    iv = interval_from_context({"params": {}, "dag_run": run}, "backfill")
    assert (iv.label, iv.job) == ("2026-11-26", "backfill")
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError):
        interval_from_context({"params": {}}, "daily")


def test_settings_from_connection() -> None:
    from types import SimpleNamespace

    from pipeline.config import S3Settings
    from pipeline.jobs.airflow_support import s3_from_connection

    conn = SimpleNamespace(
        login="key",
        password="secret",
        host=None,
        port=None,
        extra_dejson={"endpoint_url": "http://127.0.0.1:19000", "region_name": "eu-west-1"},
    )
    s3 = s3_from_connection(conn, S3Settings(endpoint_url="http://other", access_key_id="envkey"))
    assert (s3.endpoint_url, s3.region, s3.access_key_id, s3.secret_access_key) == (
        "http://127.0.0.1:19000",
        "eu-west-1",
        "key",
        "secret",
    )
    assert "secret" not in repr(s3)
