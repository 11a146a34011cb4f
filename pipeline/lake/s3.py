"""The S3 backend of the lake (AWS or an S3-compatible store such as MinIO): `S3Lake` and botocore's errors
mapped onto the pipeline's. Imported only when a lake or archive URI is s3:// (pipeline.lake.store.open_lake),
so a run on a local lake never loads botocore (about 0.3 s of imports in every process)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from pipeline.config import S3Settings
from pipeline.errors import ConfigError, FatalError, RetriableError, WirefeedError
from pipeline.lake.store import MULTIPART_THRESHOLD, PART_SIZE, NotFoundError, ObjectInfo, check_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

log = logging.getLogger(__name__)

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

    parallel_io = True

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

    def batch(self) -> contextlib.nullcontext[None]:
        """Each put is durable once it returned: nothing to do at the end."""
        return contextlib.nullcontext()

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

    def local_file(self, key: str) -> None:
        return None  # objects are read through get()

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        try:
            resp = self.client.get_object(
                Bucket=self.bucket, Key=self._full(key), Range=f"bytes={start}-{start + length - 1}"
            )
            body: bytes = resp["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # starts past the end
                return b""
            raise map_s3_error(exc, "get", self.uri(key)) from exc
        except BotoCoreError as exc:
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
