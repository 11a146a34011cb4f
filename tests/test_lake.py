import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from pipeline.config import S3Settings, Settings
from pipeline.errors import ConfigError, FatalError, RetriableError
from pipeline.lake.store import (
    LocalLake,
    NotFoundError,
    ObjectInfo,
    S3Lake,
    check_key,
    map_s3_error,
    open_lake,
)

# --- LocalLake --------------------------------------------------------------------------------------------


def test_local_put_get_stat_list_delete(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    info = lake.put("stories/dt=2026-11-25/a.parquet", b"abc")
    assert info == ObjectInfo("stories/dt=2026-11-25/a.parquet", 3, hashlib.sha256(b"abc").hexdigest())
    lake.put("stories/dt=2026-11-26/b.parquet", b"defg")
    lake.put("_manifests/daily/x.json", b"{}")
    assert lake.get("stories/dt=2026-11-25/a.parquet") == b"abc"
    assert lake.stat("stories/dt=2026-11-25/a.parquet") == info
    assert lake.stat("nope") is None
    assert [o.key for o in lake.list("stories/")] == [
        "stories/dt=2026-11-25/a.parquet",
        "stories/dt=2026-11-26/b.parquet",
    ]
    assert [o.size for o in lake.list("stories/")] == [3, 4]
    assert lake.exists("_manifests/daily/x.json")
    lake.delete("_manifests/daily/x.json")
    lake.delete("_manifests/daily/x.json")  # deleting a missing key is not an error
    assert not lake.exists("_manifests/daily/x.json")
    with pytest.raises(NotFoundError):
        lake.get("_manifests/daily/x.json")


def test_local_uri_and_key_for_roundtrip(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    uri = lake.uri("_staging/daily/x.parquet")
    assert uri == f"{tmp_path.resolve()}/_staging/daily/x.parquet"
    assert lake.key_for(uri) == "_staging/daily/x.parquet"
    assert lake.key_for("file://" + uri) == "_staging/daily/x.parquet"
    assert lake.key_for("_staging/daily/x.parquet") == "_staging/daily/x.parquet"


def test_local_put_replaces_atomically_and_never_leaves_a_half_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = LocalLake(tmp_path)
    lake.put("k/obj", b"old content")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(FatalError, match="No space left"):
        lake.put("k/obj", b"new content that does not fit")
    with pytest.raises(FatalError):
        lake.put("k/fresh", b"never written")
    monkeypatch.undo()
    assert lake.get("k/obj") == b"old content"
    assert not lake.exists("k/fresh")
    assert sorted(p.name for p in (tmp_path / "k").iterdir()) == ["obj"]  # no temp files left


def test_local_list_skips_temp_files_of_an_interrupted_put(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    lake.put("a/b", b"1")
    (tmp_path / "a" / ".b.0123.part").write_bytes(b"partial")
    assert [o.key for o in lake.list()] == ["a/b"]
    assert LocalLake(tmp_path / "missing").list() == []


@pytest.mark.parametrize("key", ["", "/abs", "../escape", "a/../b", "a//b", "a/./b", "a\\b"])
def test_keys_that_could_escape_the_root_are_rejected(tmp_path: Path, key: str) -> None:
    with pytest.raises(FatalError):
        check_key(key)
    with pytest.raises(FatalError):
        LocalLake(tmp_path).put(key, b"x")


# --- open_lake --------------------------------------------------------------------------------------------


def test_open_lake_picks_the_backend(tmp_path: Path) -> None:
    settings = Settings(
        s3=S3Settings(endpoint_url="http://127.0.0.1:1", access_key_id="k", secret_access_key="s")
    )
    s3 = open_lake("s3://bucket/some/prefix/", settings)
    assert isinstance(s3, S3Lake)
    assert (s3.bucket, s3.prefix) == ("bucket", "some/prefix")
    assert s3.uri("stories/x") == "s3://bucket/some/prefix/stories/x"
    assert s3.key_for("s3://bucket/some/prefix/stories/x") == "stories/x"
    assert open_lake("s3://bucket", settings).uri("k") == "s3://bucket/k"
    local = open_lake(str(tmp_path / "lake"))
    assert isinstance(local, LocalLake)
    assert isinstance(open_lake(f"file://{tmp_path}"), LocalLake)
    with pytest.raises(ConfigError):
        open_lake("gs://bucket/x", settings)
    with pytest.raises(ConfigError):
        open_lake("s3:///nobucket", settings)


def test_s3_lake_repr_hides_the_secret() -> None:
    settings = Settings(
        s3=S3Settings(endpoint_url="http://127.0.0.1:1", access_key_id="AK", secret_access_key="SEKRIT")
    )
    lake = open_lake("s3://bkt/p", settings)
    assert "SEKRIT" not in repr(lake)
    assert "SEKRIT" not in repr(settings)


# --- error mapping ----------------------------------------------------------------------------------------


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (_client_error("NoSuchBucket", 404), ConfigError),
        (_client_error("AccessDenied", 403), ConfigError),
        (_client_error("InvalidAccessKeyId", 403), ConfigError),
        (_client_error("SignatureDoesNotMatch", 403), ConfigError),
        (_client_error("NoSuchKey", 404), NotFoundError),
        (_client_error("SlowDown", 503), RetriableError),
        (_client_error("InternalError", 500), RetriableError),
        (_client_error("Whatever", 502), RetriableError),
        (_client_error("TooManyRequests", 429), RetriableError),
        (_client_error("BadDigest", 400), RetriableError),
        (_client_error("InvalidArgument", 400), FatalError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), RetriableError),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), RetriableError),
    ],
)
def test_map_s3_error(exc: Exception, expected: type) -> None:
    mapped = map_s3_error(exc, "put", "s3://b/k")
    assert type(mapped) is expected
    assert "s3://b/k" in mapped.message


def test_bucket_errors_have_clear_messages() -> None:
    assert (
        "bucket does not exist" in map_s3_error(_client_error("NoSuchBucket", 404), "get", "s3://b/k").message
    )
    assert (
        "AWS_ACCESS_KEY_ID"
        in map_s3_error(_client_error("InvalidAccessKeyId", 403), "get", "s3://b/k").message
    )


# --- S3Lake against moto (the real-MinIO checks live in tests/integration) --------------------------------


@pytest.fixture
def moto_lake(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Lake]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        s3 = S3Settings(region="us-east-1", access_key_id="testing", secret_access_key="testing")
        lake = S3Lake("moto-bucket", "lake", s3, multipart_threshold=6 * 2**20, part_size=5 * 2**20)
        lake.ensure_bucket()
        yield lake


def test_s3_put_sends_a_sha256_checksum_and_records_it_in_metadata(moto_lake: S3Lake) -> None:
    sent: list[dict[str, Any]] = []
    moto_lake.client.meta.events.register(
        "provide-client-params.s3.PutObject", lambda params, **_: sent.append(dict(params))
    )
    info = moto_lake.put("stories/a.parquet", b"payload", "application/octet-stream")
    digest = hashlib.sha256(b"payload")
    assert sent[0]["ChecksumSHA256"] == base64.b64encode(digest.digest()).decode()
    assert sent[0]["Metadata"] == {"sha256": digest.hexdigest()}
    head = moto_lake.client.head_object(Bucket="moto-bucket", Key="lake/stories/a.parquet")
    assert head["Metadata"]["sha256"] == info.sha256 == digest.hexdigest()
    assert moto_lake.stat("stories/a.parquet") == info
    assert moto_lake.get("stories/a.parquet") == b"payload"
    moto_lake.ensure_bucket()  # idempotent


def test_s3_list_paginates_and_strips_the_prefix(moto_lake: S3Lake) -> None:
    moto_lake.list_page_size = 2
    for i in range(5):
        moto_lake.put(f"stories/{i}", b"x" * i)
    moto_lake.put("other/z", b"z")
    listed = moto_lake.list("stories/")
    assert [(o.key, o.size) for o in listed] == [(f"stories/{i}", i) for i in range(5)]
    moto_lake.delete("stories/0")
    assert not moto_lake.exists("stories/0")
    with pytest.raises(NotFoundError):
        moto_lake.get("stories/0")


def test_s3_multipart_roundtrip(moto_lake: S3Lake) -> None:
    body = os.urandom(11 * 2**20)
    info = moto_lake.put("big.bin", body)
    assert moto_lake.get("big.bin") == body
    assert moto_lake.stat("big.bin") == info


def test_s3_multipart_failure_aborts_the_upload(moto_lake: S3Lake) -> None:
    calls: list[int] = []

    def fail_second_part(params: dict[str, Any], **_: Any) -> None:
        calls.append(params["PartNumber"])
        if params["PartNumber"] == 2:
            raise EndpointConnectionError(endpoint_url="http://minio.invalid")

    moto_lake.client.meta.events.register("provide-client-params.s3.UploadPart", fail_second_part)
    with pytest.raises(RetriableError, match="unreachable"):
        moto_lake.put("big.bin", os.urandom(11 * 2**20))
    assert calls == [1, 2]
    assert not moto_lake.exists("big.bin")
    uploads = moto_lake.client.list_multipart_uploads(Bucket="moto-bucket")
    assert uploads.get("Uploads", []) == []


def test_s3_missing_bucket_is_fatal(moto_lake: S3Lake) -> None:
    other = S3Lake("no-such-bucket", "", moto_lake.settings, client=moto_lake.client)
    with pytest.raises(FatalError, match="bucket does not exist"):
        other.put("k", b"x")


def test_local_list_with_partial_and_missing_prefixes(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    for key in ("stories/dt=2026-11-24/a", "stories/dt=2026-11-25/b", "storiesX/c", "raw/ab/d"):
        lake.put(key, b"1")
    assert [o.key for o in lake.list("stories/dt=2026-11-2")] == [
        "stories/dt=2026-11-24/a",
        "stories/dt=2026-11-25/b",
    ]
    assert [o.key for o in lake.list("stor")] == [
        "stories/dt=2026-11-24/a",
        "stories/dt=2026-11-25/b",
        "storiesX/c",
    ]
    assert lake.list("nothing/here/") == []
    with pytest.raises(FatalError):
        lake.list("../")
