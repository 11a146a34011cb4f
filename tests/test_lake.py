import base64
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from pipeline.config import S3Settings, Settings
from pipeline.errors import ConfigError, FatalError, RetriableError
from pipeline.lake import store
from pipeline.lake.s3 import S3Lake, map_s3_error
from pipeline.lake.store import (
    BadKeyError,
    LocalLake,
    NotFoundError,
    ObjectInfo,
    check_key,
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


def test_local_get_range_reads_part_of_an_object(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    lake.put("_state/index/segments/a.arrow", b"0123456789")
    assert lake.get_range("_state/index/segments/a.arrow", 2, 3) == b"234"
    assert lake.get_range("_state/index/segments/a.arrow", 8, 5) == b"89"  # the object ends first
    assert lake.get_range("_state/index/segments/a.arrow", 12, 5) == b""
    with pytest.raises(NotFoundError):
        lake.get_range("_state/index/segments/b.arrow", 0, 1)


def test_local_put_new_writes_only_a_missing_key(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    assert lake.put_new("raw/aa/x.json", b"first", "application/json")
    assert not lake.put_new("raw/aa/x.json", b"second", "application/json")
    assert lake.get("raw/aa/x.json") == b"first" and lake.leftovers() == []
    assert [o.key for o in lake.list("")] == ["raw/aa/x.json"]


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


def test_local_batch_fsyncs_each_directory_once_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    monkeypatch.setattr(store, "_fsync_dir", lambda path: synced.append(path.name))
    lake = LocalLake(tmp_path)
    lake.put("a/x", b"1")
    assert synced == ["a"]  # outside a batch: after each put
    with lake.batch():
        lake.put("b/x", b"1")
        with lake.batch():  # nested: part of the outer block
            lake.put("b/y", b"2")
            lake.put("a/y", b"3")
        assert lake.put_new("b/z", b"4") and not lake.put_new("b/z", b"5")
        assert synced == ["a"] and lake.get("b/y") == b"2"  # renamed, not yet synced
    assert synced == ["a", "a", "b"]
    with pytest.raises(RuntimeError), lake.batch():  # a failed block syncs what it renamed
        lake.put("c/x", b"1")
        raise RuntimeError("failed")
    assert synced == ["a", "a", "b", "c"] and lake.get("c/x") == b"1"
    lake.put("d/x", b"1")
    assert synced[-1] == "d"


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


def test_lake_under_a_regular_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    lake = LocalLake(tmp_path / "file" / "lake")
    with pytest.raises(ConfigError, match="cannot be created"):
        lake.ensure_bucket()
    with pytest.raises(FatalError, match="cannot write"):
        lake.put("a/b", b"1")
    with pytest.raises(NotFoundError):
        lake.get("a/b")
    assert lake.list() == [] and not lake.exists("a/b") and lake.stat("a/b") is None
    with pytest.raises(ConfigError, match="cannot be created"):
        LocalLake(tmp_path / "file").ensure_bucket()


def test_a_symlink_leading_outside_the_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.txt").write_text("the host's secrets")
    lake = LocalLake(tmp_path / "lake")
    lake.put("inside/ok.txt", b"fine")
    (tmp_path / "lake" / "inside" / "link.txt").symlink_to(tmp_path / "outside.txt")
    (tmp_path / "lake" / "inside" / "alias.txt").symlink_to(tmp_path / "lake" / "inside" / "ok.txt")
    with pytest.raises(BadKeyError) as err:
        lake.get("inside/link.txt")
    assert err.value.kind == "outside_root"
    assert lake.get("inside/alias.txt") == b"fine"  # a link that stays inside is fine


_SLOW_WRITER = """
import os, sys, time
from pipeline.lake.store import LocalLake
os.fsync = lambda fd: (print("writing", flush=True), time.sleep(120))
LocalLake(sys.argv[1]).put("stories/dt=2026-11-20/daily-2026-11-20.parquet", b"PAR1" * 1000)
"""


def _writer_in_fsync(root: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(root)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline() == "writing\n"
    return proc


def test_a_killed_write_leaves_nothing_under_stories_and_the_next_write_removes_it(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    writer = _writer_in_fsync(root)
    writer.send_signal(signal.SIGKILL)
    writer.wait(30)
    files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    assert not [f for f in files if f.startswith("stories/")]  # a reader of stories/ sees nothing
    (leftover,) = [f for f in files if f.endswith(".part")]
    assert leftover.startswith("_tmp/")
    lake = LocalLake(root)
    assert lake.leftovers() == [leftover] and lake.list() == []
    lake.put("stories/dt=2026-11-20/daily-2026-11-20.parquet", b"done")
    assert lake.leftovers() == [] and not (root / leftover).exists()


def test_the_temp_file_of_a_write_under_way_is_never_removed(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    writer = _writer_in_fsync(root)
    try:
        (tmp_file,) = (root / "_tmp").glob("*.part")
        other = LocalLake(root)
        other.put("_state/feeds/x.json", b"{}")  # its first write sweeps: the busy lock keeps the file
        assert other.leftovers() == [] and other.remove_leftovers() == [] and tmp_file.exists()
    finally:
        writer.kill()
        writer.wait(30)
    assert LocalLake(root).leftovers() == [f"_tmp/{tmp_file.name}"]


def test_a_sweep_on_a_fresh_lake_never_takes_the_temp_file_of_a_write_starting_now(
    tmp_path: Path,
) -> None:
    # Without _tmp/.lock no write ever used _tmp/: a file there belongs to a write that is starting right now
    # (it made the lock and its temp file between our look at the lock and our glob).
    root = tmp_path / "lake"
    (root / "_tmp").mkdir(parents=True)
    starting = root / "_tmp" / "0123.part"
    starting.write_bytes(b"being written")
    assert LocalLake(root).remove_leftovers() == [] and starting.exists()


def test_many_first_writes_at_once_on_a_fresh_lake_all_land(tmp_path: Path) -> None:
    # The daily run writes raw bodies from several threads, each lake instance sweeping on its first write.
    for attempt in range(20):
        root = tmp_path / f"lake{attempt}"
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i, r=root: LocalLake(r).put(f"raw/{i}.bin", b"x" * 4096), range(8)))
        assert sorted(o.key for o in LocalLake(root).list("raw/")) == [f"raw/{i}.bin" for i in range(8)]


def test_temp_files_older_versions_left_under_stories_are_reported_and_removed(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    legacy = tmp_path / "stories" / "dt=2025-09-10" / ".backfill-2025-09-10.parquet.0a1b.part"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"partial")
    assert lake.leftovers() == ["stories/dt=2025-09-10/.backfill-2025-09-10.parquet.0a1b.part"]
    assert lake.remove_leftovers() == ["stories/dt=2025-09-10/.backfill-2025-09-10.parquet.0a1b.part"]
    assert not legacy.exists()


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


def test_a_local_lake_never_imports_botocore(tmp_path: Path) -> None:
    """botocore costs every process about 0.3 s of imports: only an s3:// URI loads it."""
    code = (
        "import sys\n"
        "from pipeline.lake.store import open_lake\n"
        "import pipeline.jobs.backfill, pipeline.jobs.daily, pipeline.commands.backfill\n"
        f"lake = open_lake({str(tmp_path / 'lake')!r})\n"
        "lake.put('a/b.txt', b'x')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('botocore', 'boto3', 'pipeline.lake.s3'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
