"""The lake: one object-store interface over a local directory (LocalLake) or an S3 bucket prefix (S3Lake).

Keys are '/'-separated and relative to the lake root; both backends lay objects out identically.
Writes are all-or-nothing: a temp file + fsync + rename locally, a SHA-256 checksum the server verifies on S3
(multipart for large bodies, aborted on failure). Local temp files live in `_tmp/` at the lake root, never
beside the objects (readers of `stories/` must not see them); writers hold a shared lock on `_tmp/.lock`, and
the first write of a LocalLake removes the temp files a killed writer left when no write is under way.
A local object whose path leads outside the root (a symlink) is refused when read. The hex SHA-256 is also
kept in the object metadata (S3: x-amz-meta-sha256) so `stat()` can report it without re-reading the object.
`put_new` writes only when no object exists at the key, in one step (a hard link locally, a conditional
write, If-None-Match: *, on S3): no exists() round trip first, and an object already there is never touched.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from pipeline.config import S3Settings, Settings
from pipeline.errors import ConfigError, FatalError, RetriableError, WirefeedError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

# S3 bucket naming rules (3-63 of a-z 0-9 . -, starting and ending with a letter or digit): checked up front
# so a mistyped name gets the same clear error on every command, not botocore's parameter dump.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
MULTIPART_THRESHOLD = 16 * 1024 * 1024
PART_SIZE = 8 * 1024 * 1024  # S3 requires >= 5 MiB for every part but the last
_TEMP_SUFFIX = ".part"
TEMP_PREFIX = "_tmp/"
_STALE_SECONDS = 3600  # a temp file this old is left over even while other writes are under way


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    sha256: str | None = None  # hex; None when the backend cannot tell without reading (S3 listings)
    # from list(): what changes when the object is rewritten (S3 ETag, local mtime in ns); not compared
    version: str | None = field(default=None, compare=False)


class NotFoundError(FatalError):
    """The key (or bucket) does not exist."""

    kind = "not_found"


class BadKeyError(FatalError):
    """A key that cannot name an object here: not a plain relative path (kind bad_key), or a local path that
    leads outside the root through a symlink (kind outside_root). When the key came from a listing (an
    archive), that one object is unusable."""

    def __init__(self, kind: str, message: str, **fields: object) -> None:
        super().__init__(message, **fields)
        self.kind = kind


@runtime_checkable
class Lake(Protocol):
    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo: ...
    def put_new(self, key: str, data: bytes, content_type: str | None = None) -> bool: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def stat(self, key: str) -> ObjectInfo | None: ...
    def leftovers(self) -> list[str]: ...
    def list(self, prefix: str = "") -> list[ObjectInfo]: ...
    def delete(self, key: str) -> None: ...
    def uri(self, key: str = "") -> str: ...
    def key_for(self, uri_or_key: str) -> str: ...
    def ensure_bucket(self) -> None: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    """Reject keys that could escape the lake root or are not plain relative '/'-paths."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or any(p in ("", ".", "..") for p in parts):
        raise BadKeyError("bad_key", f"invalid lake key {key!r}", key=key)
    return key


def open_lake(uri: str, settings: Settings | None = None) -> Lake:
    """`s3://bucket/prefix` -> S3Lake; a local path (or file://path) -> LocalLake."""
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ConfigError(f"lake URI has no bucket: {uri!r}", field="lake")
        if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
            raise ConfigError(
                f"invalid bucket name {bucket!r} in lake {uri!r}: S3 bucket names are 3-63 characters "
                "of a-z, 0-9, '.' and '-', starting and ending with a letter or digit",
                field="lake",
            )
        s3 = settings.s3 if settings is not None else Settings.load().s3
        return S3Lake(bucket, prefix, s3)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    elif "://" in uri:
        raise ConfigError(f"unsupported lake URI scheme: {uri.split('://')[0]!r}", field="lake")
    return LocalLake(uri)


def lake_for(settings: Settings, *, create: bool = False, must_exist: bool = False) -> Lake:
    """The lake Settings.lake names; with create=True its bucket is made first, with must_exist=True an S3
    lake's bucket must already exist. Either way an S3 endpoint is reached here, so a wrong endpoint, key or
    bucket fails early with one clear error (RetriableError for an unreachable store, ConfigError else)."""
    lake = open_lake(settings.lake, settings)
    if create:
        lake.ensure_bucket()
    elif must_exist and isinstance(lake, S3Lake):
        lake.check_access()
    return lake


class LocalLake:
    """A lake in a local directory (the embedded default ./lake)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._swept = False

    def __repr__(self) -> str:
        return f"LocalLake({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _inside(self, key: str) -> Path:
        """The path of `key` for reading; BadKeyError when a symlink leads it outside the root."""
        path = self._path(key)
        if not path.resolve().is_relative_to(self.root):
            raise BadKeyError("outside_root", f"{self.uri(key)} leads outside {self.root} (symlink)", key=key)
        return path

    def ensure_bucket(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"lake directory {self.root} cannot be created: {exc.strerror or exc}", field="lake"
            ) from None

    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        self._write(key, data, replace=True)
        return ObjectInfo(key, len(data), sha256_hex(data))

    def put_new(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Write `key` unless it exists (True when written)."""
        return self._write(key, data, replace=False)

    def _write(self, key: str, data: bytes, *, replace: bool) -> bool:
        path = self._path(key)
        tmp = self.root / TEMP_PREFIX / f"{uuid.uuid4().hex}{_TEMP_SUFFIX}"
        written = True
        try:
            if not self._swept:
                self._swept = True
                self.remove_leftovers()
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._writing(), open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
                if replace:
                    os.replace(tmp, path)
                else:
                    try:
                        os.link(tmp, path)  # fails when the key exists: an object there is never replaced
                    except FileExistsError:
                        written = False
                    tmp.unlink()
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise FatalError(f"cannot write {path}: {exc.strerror or exc}", key=key, path=str(path)) from exc
        if written:
            _fsync_dir(path.parent)
        return written

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """A shared lock on _tmp/.lock for the life of a temp file."""
        (self.root / TEMP_PREFIX).mkdir(parents=True, exist_ok=True)
        with open(self.root / TEMP_PREFIX / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
            yield

    def leftovers(self) -> list[str]:
        """Temp files of writes that never finished: in _tmp/, and `.*.part` files under stories/ from older
        versions (which wrote them beside the objects). While another write is under way, only files older
        than an hour count."""
        with self._leftover_files() as found:
            return sorted(p.relative_to(self.root).as_posix() for p in found)

    def remove_leftovers(self) -> list[str]:
        """Remove the temp files of writes that never finished (a killed process); the keys removed."""
        with self._leftover_files() as found:
            for path in found:
                path.unlink(missing_ok=True)
                log.warning("removed %s, left by an unfinished write", path)
            return sorted(p.relative_to(self.root).as_posix() for p in found)

    @contextlib.contextmanager
    def _leftover_files(self) -> Iterator[list[Path]]:
        """The temp files of unfinished writes, yielded while holding the exclusive lock on _tmp/.lock when no
        write is under way (none can start meanwhile); while one is, only files older than an hour. Without
        a lock file no write ever used _tmp/ (each takes the lock before its temp file exists), so _tmp/ is
        not looked at: a write starting right now could put its file there before we look."""
        stories = self.root / "stories"
        found = [p for p in stories.rglob(f".*{_TEMP_SUFFIX}") if p.is_file()] if stories.is_dir() else []
        lock_path = self.root / TEMP_PREFIX / ".lock"
        if not lock_path.is_file():
            yield found
            return
        with open(lock_path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                quiet = True
            except BlockingIOError:  # a write is under way: only files too old to be its own count
                quiet = False
            found += [p for p in (self.root / TEMP_PREFIX).glob(f"*{_TEMP_SUFFIX}") if p.is_file()]
            if not quiet:
                cutoff = time.time() - _STALE_SECONDS
                found = [p for p in found if _modified(p) < cutoff]
            yield found

    def get(self, key: str) -> bytes:
        try:
            return self._inside(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFoundError(f"no such object: {self.uri(key)}", key=key) from None
        except OSError as exc:
            raise FatalError(f"cannot read {self.uri(key)}: {exc.strerror or exc}", key=key) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> ObjectInfo | None:
        """Size and SHA-256 (hashed from the file: local reads are cheap)."""
        path = self._path(key)
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return ObjectInfo(key, path.stat().st_size, digest.hexdigest())

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key (size and mtime; sha256 via stat())."""
        if prefix.startswith("/") or ".." in prefix.split("/"):
            raise FatalError(f"invalid lake prefix {prefix!r}", prefix=prefix)
        start = self.root / prefix.rpartition("/")[0]  # walk only below the prefix's directory
        if not start.is_dir():
            return []
        found = []
        temp_dir = self.root / TEMP_PREFIX.rstrip("/")
        for path in start.rglob("*"):
            if not path.is_file() or (path.name.startswith(".") and path.name.endswith(_TEMP_SUFFIX)):
                continue
            if path.parent == temp_dir:
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                st = path.stat()
                found.append(ObjectInfo(key, st.st_size, version=str(st.st_mtime_ns)))
        return sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def uri(self, key: str = "") -> str:
        return f"{self.root}/{key}"

    def key_for(self, uri_or_key: str) -> str:
        base = self.uri()
        if uri_or_key.startswith(base):
            return check_key(uri_or_key[len(base) :])
        if uri_or_key.startswith("file://") and uri_or_key[len("file://") :].startswith(base):
            return check_key(uri_or_key[len("file://") + len(base) :])
        return check_key(uri_or_key)


def _modified(path: Path) -> float:
    """mtime, or +inf when a running write has just renamed the file away (so it never counts as stale)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return math.inf


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- S3 ---------------------------------------------------------------------------------------------------

_RETRIABLE_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
    "BadDigest",
    "XAmzContentChecksumMismatch",
    "XAmzContentSHA256Mismatch",
    "XMinioServerNotInitialized",
}
# Configuration problems (ConfigError: the user fixes a setting, retrying will not help).
_CONFIG_CODES = {
    "NoSuchBucket": "bucket does not exist",
    "AccessDenied": "access denied (check the bucket policy / credentials)",
    "InvalidAccessKeyId": "access key is not known to the object store (check AWS_ACCESS_KEY_ID)",
    "SignatureDoesNotMatch": "signature does not match (check AWS_SECRET_ACCESS_KEY)",
    "AllAccessDisabled": "access to the bucket is disabled",
}


def map_s3_error(exc: Exception, op: str, where: str) -> WirefeedError:
    """Translate a botocore exception into RetriableError / ConfigError / FatalError / NotFoundError, with a
    one-line message that names the setting to check (no secrets)."""
    if isinstance(exc, NoCredentialsError):
        return ConfigError(f"{op} {where}: no S3 credentials (AWS_ACCESS_KEY_ID/...)", op=op, where=where)
    if isinstance(exc, ParamValidationError):
        detail = " ".join(str(exc).split())
        return ConfigError(f"{op} {where}: invalid S3 request: {detail}", op=op, where=where)
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _CONFIG_CODES:
            msg = f"{op} {where}: {_CONFIG_CODES[code]} ({code})"
            return ConfigError(msg, op=op, where=where, code=code, status=status)
        if code in ("NoSuchKey", "NotFound", "404") or status == 404:
            return NotFoundError(f"{op} {where}: not found", op=op, where=where, code=code, status=status)
        if code in _RETRIABLE_CODES or status >= 500 or status == 429:
            msg = f"{op} {where}: object store error {code or status}, try again"
            return RetriableError(msg, op=op, where=where, code=code, status=status)
        msg = f"{op} {where}: object store refused the request ({code or status})"
        return FatalError(msg, op=op, where=where, code=code, status=status)
    if isinstance(exc, BotoCoreError):
        # Connection refused/reset, timeouts, closed connections, retries exhausted: transient.
        url = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url") or ""))
        at = f" at {url.scheme}://{url.netloc} (check AWS_ENDPOINT_URL)" if url.netloc else ""
        return RetriableError(
            f"{op} {where}: object store unreachable or connection lost{at} ({type(exc).__name__})",
            op=op,
            where=where,
            error=type(exc).__name__,
        )
    return FatalError(f"{op} {where}: unexpected error {type(exc).__name__}", op=op, where=where)


def s3_client(s3: S3Settings, *, max_attempts: int = 3, connect_timeout: float = 5.0) -> S3Client:
    config = Config(
        region_name=s3.region,
        s3={"addressing_style": "path"},
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=60,
        tcp_keepalive=True,
    )
    # botocore's session, as boto3's Session would build it, without importing boto3 (its s3transfer costs
    # 0.25 s of imports in every process; this module calls only the client's own operations)
    session = botocore.session.get_session()
    if s3.access_key_id or s3.secret_access_key or s3.session_token:
        # as boto3 passes them, None included (the stubs say str; botocore then reports missing credentials)
        access_key, secret_key = cast(str, s3.access_key_id), cast(str, s3.secret_access_key)
        session.set_credentials(access_key, secret_key, s3.session_token)
    if s3.region:
        session.set_config_variable("region", s3.region)
    client = session.create_client("s3", endpoint_url=s3.endpoint_url, config=config)
    return cast("S3Client", client)


class S3Lake:
    """A lake under s3://bucket/prefix (AWS or an S3-compatible store such as MinIO)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        s3: S3Settings | None = None,
        *,
        client: S3Client | None = None,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        list_page_size: int = 1000,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.settings = s3 or S3Settings()
        self.client = client or s3_client(self.settings)
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.list_page_size = list_page_size

    def __repr__(self) -> str:
        return f"S3Lake({self.uri()!r}, endpoint={self.settings.endpoint_url!r})"

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str = "") -> str:
        base = f"s3://{self.bucket}/{self.prefix}/" if self.prefix else f"s3://{self.bucket}/"
        return base + key

    def key_for(self, uri_or_key: str) -> str:
        base = self.uri()
        return check_key(uri_or_key[len(base) :] if uri_or_key.startswith(base) else uri_or_key)

    def check_access(self) -> None:
        """One listing request under the prefix: a wrong endpoint, key, secret or a missing bucket fails here
        with the error every command prints alike (a listing, unlike HEAD, says which of them it is)."""
        if not self._bucket_exists():
            raise ConfigError(f"open {self.uri()}: bucket does not exist (NoSuchBucket)", where=self.uri())

    def _bucket_exists(self) -> bool:
        root = f"{self.prefix}/" if self.prefix else ""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=root, MaxKeys=1)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return False
            raise map_s3_error(exc, "open", self.uri()) from exc
        except BotoCoreError as exc:
            raise map_s3_error(exc, "open", self.uri()) from exc
        return True

    def ensure_bucket(self) -> None:
        if self._bucket_exists():
            return
        log.info("creating bucket %s", self.bucket)
        try:
            if self.settings.region and self.settings.region != "us-east-1":
                self.client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": self.settings.region},  # type: ignore[typeddict-item]
                )
            else:
                self.client.create_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise map_s3_error(exc, "create_bucket", self.uri()) from exc
        except BotoCoreError as exc:
            raise map_s3_error(exc, "create_bucket", self.uri()) from exc

    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        return ObjectInfo(key, len(data), self._put(key, data, content_type, only_new=False))

    def put_new(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Write `key` unless it exists (True when written): a conditional write, If-None-Match: *."""
        return self._put(key, data, content_type, only_new=True) is not None

    def _put(self, key: str, data: bytes, content_type: str | None, *, only_new: bool) -> str | None:
        """The hex SHA-256 of what was written; None when `only_new` and the key exists."""
        full = self._full(key)
        digest = hashlib.sha256(data)
        extra: dict[str, Any] = {"Metadata": {"sha256": digest.hexdigest()}}
        if content_type:
            extra["ContentType"] = content_type
        condition: dict[str, Any] = {"IfNoneMatch": "*"} if only_new else {}
        try:
            if len(data) > self.multipart_threshold:
                self._put_multipart(full, data, extra, condition)
            else:
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=full,
                    Body=data,
                    ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
                    **extra,
                    **condition,
                )
        except ClientError as exc:
            if only_new and exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                log.debug("put_new %s: exists already", self.uri(key))
                return None
            raise map_s3_error(exc, "put", self.uri(key)) from exc
        except BotoCoreError as exc:
            raise map_s3_error(exc, "put", self.uri(key)) from exc
        log.debug("put %s (%d bytes)", self.uri(key), len(data))
        return digest.hexdigest()

    def _put_multipart(
        self, full: str, data: bytes, extra: dict[str, Any], condition: dict[str, Any]
    ) -> None:
        upload = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=full, ChecksumAlgorithm="SHA256", **extra
        )
        upload_id = upload["UploadId"]
        try:
            parts: list[CompletedPartTypeDef] = []
            for number, chunk in enumerate(_chunks(data, self.part_size), start=1):
                checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
                resp = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=full,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
                parts.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": checksum})
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )
        except BaseException:
            self._abort(full, upload_id)
            raise

    def _abort(self, full: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            log.warning("aborted multipart upload of s3://%s/%s", self.bucket, full)
        except (ClientError, BotoCoreError) as exc:
            # The store is likely down; S3/MinIO expire incomplete uploads (and they are never visible).
            name = type(exc).__name__
            log.warning("could not abort multipart upload of s3://%s/%s: %s", self.bucket, full, name)

    def get(self, key: str) -> bytes:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            body: bytes = resp["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise map_s3_error(exc, "get", self.uri(key)) from exc
        return body

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except (ClientError, BotoCoreError) as exc:
            mapped = map_s3_error(exc, "head", self.uri(key))
            if isinstance(mapped, NotFoundError):
                return None
            raise mapped from exc
        return ObjectInfo(key, int(resp["ContentLength"]), resp.get("Metadata", {}).get("sha256"))

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def leftovers(self) -> list[str]:
        """None on S3: an unfinished upload is never visible as an object (and the store expires it)."""
        return []

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        """Objects whose key starts with `prefix`, sorted by key (paginated, with ETags; sha256: stat())."""
        root = f"{self.prefix}/" if self.prefix else ""
        found = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            pages = paginator.paginate(
                Bucket=self.bucket, Prefix=root + prefix, PaginationConfig={"PageSize": self.list_page_size}
            )
            for page in pages:
                for obj in page.get("Contents", []):
                    etag = str(obj.get("ETag", "")).strip('"') or None
                    found.append(ObjectInfo(obj["Key"][len(root) :], int(obj["Size"]), version=etag))
        except (ClientError, BotoCoreError) as exc:
            raise map_s3_error(exc, "list", self.uri(prefix)) from exc
        return sorted(found, key=lambda o: o.key)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except (ClientError, BotoCoreError) as exc:
            raise map_s3_error(exc, "delete", self.uri(key)) from exc


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])
