"""Landing + validate against real MinIO; data read back with pyarrow's own S3 client (not boto3)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from pipeline.config import S3Settings, Settings
from pipeline.errors import RetriableError
from pipeline.jobs.intervals import Interval
from pipeline.lake.landing import land, read_manifest
from pipeline.lake.s3 import S3Lake
from pipeline.lake.store import Lake, open_lake
from pipeline.lake.validate import validate
from pipeline.schema import field_names
from tests.integration.conftest import PrivateMinio
from tests.test_landing import story

pytestmark = pytest.mark.integration
DAY1 = Interval.for_date("2026-11-24")
DAY2 = Interval.for_date("2026-11-25")


def arrow_read(s3: S3Settings, lake_uri: str) -> Any:
    """All story rows under the lake, via pyarrow.fs.S3FileSystem + hive partitioning."""
    endpoint = urlparse(s3.endpoint_url or "")
    fs = pafs.S3FileSystem(
        endpoint_override=endpoint.netloc,
        scheme=endpoint.scheme,
        access_key=s3.access_key_id,
        secret_key=s3.secret_access_key,
        region=s3.region,
    )
    path = lake_uri.removeprefix("s3://") + "/stories"
    return ds.dataset(path, filesystem=fs, format="parquet", partitioning="hive").to_table()


def versions(table: Any) -> list[tuple[str, str]]:
    return sorted(
        zip(table.column("story_id").to_pylist(), table.column("content_hash").to_pylist(), strict=True)
    )


def test_land_validate_and_read_back_with_pyarrow(s3_lake_uri: str, s3_settings: Settings) -> None:
    lake = open_lake(s3_lake_uri, s3_settings)
    batch = [story(1, day=23), story(2), story(3), story(2)]
    m = land(lake, DAY1, batch, feeds=[{"feed_id": "f1", "status": "ok"}])
    assert m.counts == {"input": 4, "new": 3, "duplicate": 0, "batch_duplicate": 1, "updated": 0, "kept": 0}
    assert lake.exists("_manifests/daily/2026-11-24.json")
    assert [o.key for o in lake.list("stories/")] == [o["key"] for o in m.objects]

    report = validate(lake)
    assert report.ok, report.violations
    assert (report.manifests, report.objects, report.rows) == (1, 2, 3)

    table = arrow_read(s3_settings.s3, s3_lake_uri)
    assert table.num_rows == 3
    assert set(field_names()) <= set(table.column_names)
    assert versions(table) == [("id-001", "v1-001"), ("id-002", "v1-002"), ("id-003", "v1-003")]


def test_rerun_overlap_and_edits_land_exactly_once(s3_lake_uri: str, s3_settings: Settings) -> None:
    lake = open_lake(s3_lake_uri, s3_settings)
    land(lake, DAY1, [story(1), story(2), story(3)])
    objects_before = lake.list()

    again = land(lake, DAY1, [story(1), story(2), story(3)])
    assert [(o.key, o.size) for o in lake.list()] == [(o.key, o.size) for o in objects_before]
    assert again.counts["new"] == 3 and again.counts["duplicate"] == 0

    day2 = land(lake, DAY2, [story(2), story(3, version="v2"), story(4, day=25)])
    assert day2.counts == {
        "input": 3,
        "new": 1,
        "duplicate": 1,
        "batch_duplicate": 0,
        "updated": 1,
        "kept": 0,
    }

    table = arrow_read(s3_settings.s3, s3_lake_uri)
    assert versions(table) == [
        ("id-001", "v1-001"),
        ("id-002", "v1-002"),
        ("id-003", "v1-003"),
        ("id-003", "v2-003"),
        ("id-004", "v1-004"),
    ]
    assert validate(lake).ok


def test_minio_killed_mid_landing_then_rerun_completes(
    private_minio: PrivateMinio, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = private_minio.settings()
    uri = "s3://landing-crash/lake"
    lake = open_lake(uri, settings)
    lake.ensure_bucket()
    land(lake, DAY1, [story(1, day=20)])  # an earlier interval, already landed
    batch = [story(1, day=20), story(2, day=22), story(3, day=23), story(4, day=24)]

    assert isinstance(lake, S3Lake)
    sent: list[str] = []
    story_puts: list[str] = []

    def remember_key(params: dict[str, Any], **_: Any) -> None:
        sent.append(params["Key"])

    def kill_after_first_story(**_: Any) -> None:
        if sent[-1].startswith("lake/stories/"):
            story_puts.append(sent[-1])
            if len(story_puts) == 1:
                private_minio.kill()

    lake.client.meta.events.register("provide-client-params.s3.PutObject", remember_key)
    lake.client.meta.events.register("after-call.s3.PutObject", kill_after_first_story)
    with pytest.raises(RetriableError, match="unreachable or connection lost") as failure:
        land(lake, DAY2, batch)
    assert len(story_puts) == 1

    private_minio.start()
    lake = open_lake(uri, settings)  # a new process would start with a new client
    assert not lake.exists("_manifests/daily/2026-11-25.json")
    assert _manifested_objects_are_intact(lake)
    left = validate(lake).violations  # only the unnamed object of the failed attempt
    assert [(v.kind, v.keys) for v in left] == [
        ("orphan_object", ("stories/dt=2026-11-22/daily-2026-11-25.parquet",))
    ]

    m = land(lake, DAY2, batch)
    assert m.counts == {"input": 4, "new": 3, "duplicate": 1, "batch_duplicate": 0, "updated": 0, "kept": 0}
    report = validate(lake)
    assert report.ok, report.violations
    assert report.rows == 4
    table = arrow_read(settings.s3, uri)
    assert versions(table) == [(f"id-00{n}", f"v1-00{n}") for n in (1, 2, 3, 4)]

    secret = str(settings.s3.secret_access_key)
    manifests = b"".join(lake.get(o.key) for o in lake.list("_manifests/"))
    assert secret.encode() not in manifests
    assert str(settings.s3.access_key_id).encode() not in manifests
    assert secret not in caplog.text
    assert secret not in f"{failure.value} {failure.value.to_dict()}"
    pipeline_logs = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("pipeline"))
    assert "landed daily/2026-11-25" in pipeline_logs
    assert str(settings.s3.access_key_id) not in pipeline_logs


def _manifested_objects_are_intact(lake: Lake) -> bool:
    for info in lake.list("_manifests/"):
        for obj in read_manifest(lake, info.key).objects:
            stat = lake.stat(obj["key"])
            if stat is None or (stat.size, stat.sha256) != (obj["size"], obj["sha256"]):
                return False
    return True


def test_credentials_never_logged_at_debug(
    s3_lake_uri: str, s3_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lake = open_lake(s3_lake_uri, s3_settings)
    land(lake, DAY1, [story(1)])
    validate(lake)
    assert str(s3_settings.s3.secret_access_key) not in caplog.text
    assert "landed daily/2026-11-24" in caplog.text
