"""S3Lake against a real MinIO (AWS_ENDPOINT_URL) and a private, killable MinIO process."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import replace
from typing import Any

import pytest

from pipeline.config import Settings
from pipeline.errors import FatalError, RetriableError
from pipeline.lake.s3 import S3Lake
from pipeline.lake.store import NotFoundError, open_lake
from tests.integration.conftest import PrivateMinio, free_port

pytestmark = pytest.mark.integration
MiB = 2**20


def test_roundtrip_with_checksums_and_paginated_listing(s3_lake_uri: str, s3_settings: Settings) -> None:
    lake = open_lake(s3_lake_uri, s3_settings)
    assert isinstance(lake, S3Lake)
    lake.list_page_size = 2
    infos = [lake.put(f"stories/dt=2026-11-2{i}/x.parquet", f"body {i}".encode()) for i in range(5)]
    lake.put("_manifests/daily/a.json", b"{}", "application/json")
    assert lake.list("stories/") == [replace(i, sha256=None) for i in infos]
    assert lake.stat(infos[0].key) == infos[0]  # sha256 from object metadata
    assert lake.get(infos[3].key) == b"body 3"
    head = lake.client.head_object(Bucket=lake.bucket, Key=f"lake/{infos[0].key}", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"body 0").digest()).decode()
    lake.delete(infos[0].key)
    assert not lake.exists(infos[0].key)
    assert lake.stat(infos[0].key) is None


def test_get_range_reads_part_of_an_object(s3_lake_uri: str, s3_settings: Settings) -> None:
    lake = open_lake(s3_lake_uri, s3_settings)
    lake.put("_state/index/segments/a.arrow", b"0123456789")
    assert lake.get_range("_state/index/segments/a.arrow", 2, 3) == b"234"
    assert lake.get_range("_state/index/segments/a.arrow", 8, 5) == b"89"  # the object ends first
    assert lake.get_range("_state/index/segments/a.arrow", 12, 5) == b""  # (S3 answers 416)
    assert lake.get_range("_state/index/segments/a.arrow", 0, 0) == b""
    with pytest.raises(NotFoundError):
        lake.get_range("_state/index/segments/b.arrow", 0, 1)


def test_multipart_roundtrip(s3_lake_uri: str, s3_settings: Settings) -> None:
    bucket = s3_lake_uri.split("/")[2]
    lake = S3Lake(bucket, "lake", s3_settings.s3, multipart_threshold=6 * MiB, part_size=5 * MiB)
    body = os.urandom(12 * MiB)
    info = lake.put("big.bin", body)
    assert lake.stat("big.bin") == info
    assert lake.get("big.bin") == body


def test_put_new_writes_only_a_missing_key(s3_lake_uri: str, s3_settings: Settings) -> None:
    bucket = s3_lake_uri.split("/")[2]
    lake = S3Lake(bucket, "lake", s3_settings.s3, multipart_threshold=6 * MiB, part_size=5 * MiB)
    assert lake.put_new("raw/aa/x.json", b"first", "application/json")
    assert not lake.put_new("raw/aa/x.json", b"second", "application/json")
    assert lake.get("raw/aa/x.json") == b"first"
    stored = lake.stat("raw/aa/x.json")
    assert stored is not None and stored.sha256 == hashlib.sha256(b"first").hexdigest()
    big = os.urandom(7 * MiB)
    assert lake.put_new("big.bin", big) and not lake.put_new("big.bin", os.urandom(7 * MiB))
    assert lake.get("big.bin") == big
    assert not lake.client.list_multipart_uploads(Bucket=bucket).get("Uploads")  # the refused one aborted


def test_body_corrupted_in_transit_is_rejected(s3_lake_uri: str, s3_settings: Settings) -> None:
    lake = open_lake(s3_lake_uri, s3_settings)
    assert isinstance(lake, S3Lake)

    def corrupt(request: Any, **_: Any) -> None:
        body = request.body if isinstance(request.body, bytes) else request.body.read()
        request.body = body[:-1] + bytes([body[-1] ^ 0xFF])

    lake.client.meta.events.register("before-send.s3.PutObject", corrupt)
    with pytest.raises(RetriableError, match="put s3://"):
        lake.put("stories/x.parquet", b"the real bytes")
    lake.client.meta.events.unregister("before-send.s3.PutObject", corrupt)
    assert not lake.exists("stories/x.parquet")


def test_ensure_bucket_creates_a_missing_bucket(s3_bucket: str, s3_settings: Settings) -> None:
    lake = open_lake(f"s3://{s3_bucket}-new/p", s3_settings)
    assert isinstance(lake, S3Lake)
    with pytest.raises(FatalError, match="bucket does not exist"):
        lake.put("k", b"x")
    lake.ensure_bucket()
    lake.ensure_bucket()
    lake.put("k", b"x")
    lake.delete("k")
    lake.client.delete_bucket(Bucket=lake.bucket)


def test_bad_credentials_are_fatal_and_not_echoed(s3_lake_uri: str, s3_settings: Settings) -> None:
    wrong_key = replace(s3_settings, s3=replace(s3_settings.s3, access_key_id="nobody"))
    with pytest.raises(FatalError, match="AWS_ACCESS_KEY_ID") as exc:
        open_lake(s3_lake_uri, wrong_key).get("k")
    wrong_secret = replace(s3_settings, s3=replace(s3_settings.s3, secret_access_key="not-the-secret-123"))
    with pytest.raises(FatalError, match="AWS_SECRET_ACCESS_KEY") as exc2:
        open_lake(s3_lake_uri, wrong_secret).put("k", b"x")
    for err in (exc.value, exc2.value):
        text = f"{err} {err.to_dict()}"
        assert "not-the-secret-123" not in text
        assert str(s3_settings.s3.secret_access_key) not in text


def test_unreachable_endpoint_is_retriable(s3_settings: Settings) -> None:
    nowhere = replace(s3_settings, s3=replace(s3_settings.s3, endpoint_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(RetriableError, match="unreachable"):
        open_lake("s3://bucket/lake", nowhere).put("k", b"x")


def test_minio_killed_during_multipart_upload(private_minio: PrivateMinio) -> None:
    lake = S3Lake("killme", "lake", private_minio.s3, multipart_threshold=6 * MiB, part_size=5 * MiB)
    lake.ensure_bucket()
    parts: list[int] = []

    def kill_after_first_part(**_: Any) -> None:
        parts.append(1)
        if len(parts) == 1:
            private_minio.kill()

    lake.client.meta.events.register("after-call.s3.UploadPart", kill_after_first_part)
    body = os.urandom(16 * MiB)
    with pytest.raises(RetriableError, match="unreachable or connection lost"):
        lake.put("big.bin", body)
    private_minio.start()
    fresh = S3Lake("killme", "lake", private_minio.s3, multipart_threshold=6 * MiB, part_size=5 * MiB)
    assert not fresh.exists("big.bin")  # an unfinished multipart upload is never visible
    fresh.put("big.bin", body)
    assert fresh.get("big.bin") == body
