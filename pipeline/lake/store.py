"""The lake: one object-store interface over a local directory (LocalLake) or an S3 bucket prefix (S3Lake).

Keys are '/'-separated and relative to the lake root; both backends lay objects out identically.
Writes are all-or-nothing: a temp file + fsync + rename locally, a SHA-256 checksum the server verifies on S3
(multipart for large bodies, aborted on failure). Local temp files live in `_tmp/` at the lake root, never
beside the objects (readers of `stories/` must not see them); writers hold a shared lock on `_tmp/.lock`, and
the first write of a LocalLake removes the temp files a killed writer left when no write is under way.
A local object whose path leads outside the root (a symlink) is refused when read. The hex SHA-256 is also
kept in the object metadata (S3: x-amz-meta-sha256) so `stat()` can report it without re-reading the object.
`batch()` makes a block of puts durable together when it ends (locally: each directory they renamed into is
fsynced once then, not after every put), for writes nothing relies on before the block's end.
`put_new` writes only when no object exists at the key, in one step (a hard link locally, a conditional
write, If-None-Match: *, on S3): no exists() round trip first, and an object already there is never touched.
S3Lake lives in pipeline.lake.s3, imported only for an s3:// URI.
"""

from __future__ import annotations

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
from stat import S_ISREG
from typing import Protocol, runtime_checkable

from pipeline.config import Settings
from pipeline.errors import ConfigError, FatalError

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


@dataclass(frozen=True)
class LocalFile:
    """A local lake's file of an object, and its size when it was looked at."""

    path: Path
    size: int


@runtime_checkable
class Lake(Protocol):
    # whether calls should overlap in threads (pipeline.lake.keyindex.io_map): each is a round trip to an
    # object store; on a local disk they are not, and threads would only add CPU
    parallel_io: bool

    def put(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        """Write `key`; the answer's sha256 is the hex SHA-256 of `data` (what was sent)."""
        ...

    def put_new(self, key: str, data: bytes, content_type: str | None = None) -> bool: ...
    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Puts inside the block are durable once it has ended (not each on its return)."""
        ...

    def get(self, key: str) -> bytes: ...
    def get_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes of `key` from `start` (fewer where the object ends before)."""
        ...

    def local_file(self, key: str) -> LocalFile | None:
        """Where a local lake keeps `key`, for a reader that reads it a piece at a time instead of whole
        (errors as get()'s); None where objects are read only through get() (S3)."""
        ...

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
        from pipeline.lake.s3 import S3Lake  # botocore is imported only for an S3 lake

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
    elif must_exist and not isinstance(lake, LocalLake):
        from pipeline.lake.s3 import S3Lake  # loaded already: open_lake made one

        if isinstance(lake, S3Lake):
            lake.check_access()
    return lake


class LocalLake:
    """A lake in a local directory (the embedded default ./lake)."""

    parallel_io = False

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._swept = False
        self._unsynced: set[Path] | None = None  # directories to fsync when the batch() block ends

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
            if self._unsynced is None:
                _fsync_dir(path.parent)
            else:
                self._unsynced.add(path.parent)
        return written

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Each put's file is fsynced before its rename as always; the renames' directories once, at the
        end (also when the block fails: what was renamed stays, as after a crash). A nested block is part
        of the outer one."""
        if self._unsynced is not None:
            yield
            return
        self._unsynced = set()
        try:
            yield
        finally:
            directories, self._unsynced = self._unsynced, None
            for directory in sorted(directories):
                _fsync_dir(directory)

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

    def local_file(self, key: str) -> LocalFile:
        path = self._inside(key)
        try:
            info = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"no such object: {self.uri(key)}", key=key) from None
        except OSError as exc:
            raise FatalError(f"cannot read {self.uri(key)}: {exc.strerror or exc}", key=key) from None
        if not S_ISREG(info.st_mode):
            raise NotFoundError(f"no such object: {self.uri(key)}", key=key)
        return LocalFile(path, info.st_size)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        try:
            with open(self._inside(key), "rb") as fh:
                fh.seek(start)
                return fh.read(length)
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
