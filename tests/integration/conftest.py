"""MinIO fixtures for integration tests (real S3 API, no fakes).

- `s3_settings`: Settings from the AWS_* environment (`eval "$(scripts/minio.sh env)"`); skips when
  AWS_ENDPOINT_URL is unset.
- `s3_lake_uri`: `s3://<fresh unique bucket>/lake`, emptied and removed afterwards.
- `private_minio`: a MinIO process of our own (same binary, free loopback port, tmp data dir) that a test may
  kill and restart; the shared MinIO on port 19000 is never touched.
- `postgres_server`, `redis_server`: PostgreSQL and Redis (Debian's packages, installed by scripts/services.sh
  when missing) on free loopback ports, state created from scratch for the test session and removed after.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest

from pipeline.config import S3Settings, Settings
from pipeline.lake.s3 import s3_client

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def s3_settings() -> Settings:
    if not os.environ.get("AWS_ENDPOINT_URL"):
        pytest.skip('AWS_ENDPOINT_URL is not set (eval "$(scripts/minio.sh env)")')
    return Settings.load()


def _new_bucket(s3: S3Settings) -> str:
    name = f"wf-test-{uuid.uuid4().hex[:16]}"
    s3_client(s3).create_bucket(Bucket=name)
    return name


def _drop_bucket(s3: S3Settings, name: str) -> None:
    bucket = boto3.resource(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key_id,
        aws_secret_access_key=s3.secret_access_key,
        region_name=s3.region,
    ).Bucket(name)
    bucket.objects.all().delete()
    for upload in bucket.multipart_uploads.all():
        upload.abort()
    bucket.delete()


@pytest.fixture
def s3_bucket(s3_settings: Settings) -> Iterator[str]:
    """A fresh, empty bucket of its own for one test."""
    name = _new_bucket(s3_settings.s3)
    yield name
    _drop_bucket(s3_settings.s3, name)


@pytest.fixture
def s3_lake_uri(s3_bucket: str) -> str:
    return f"s3://{s3_bucket}/lake"


SERVICES = REPO / "scripts" / "services.sh"


def _service(*args: str | Path | int) -> None:
    out = subprocess.run(
        [str(SERVICES), *map(str, args)], capture_output=True, text=True, timeout=900, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"scripts/services.sh {' '.join(map(str, args))} failed:\n{out.stderr[-3000:]}")


@dataclass(frozen=True)
class PostgresServer:
    """A PostgreSQL server on 127.0.0.1:port, superuser postgres (trust auth on loopback)."""

    port: int

    def connect(self, dbname: str = "postgres") -> Any:
        return psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname)

    def create_database(self, name: str) -> str:
        """A new, empty database; its SQLAlchemy URL."""
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"


@dataclass(frozen=True)
class RedisServer:
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    data = Path(tempfile.mkdtemp(prefix="wirefeed-pg-"))  # under /tmp: reachable by the postgres user
    _service("postgres", "start", data, port := free_port())
    try:
        yield PostgresServer(port)
    finally:
        _service("postgres", "stop", data)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    data = Path(tempfile.mkdtemp(prefix="wirefeed-redis-"))
    _service("redis", "start", data, port := free_port())
    try:
        yield RedisServer(port)
    finally:
        _service("redis", "stop", data)


def airflow_env(home: Path, s3: Settings, lake: str) -> dict[str, str]:
    """Environment for an Airflow process on a throw-away SQLite metadata DB in `home`, landing into `lake`
    with the S3 credentials handed over only as the Airflow connection wirefeed_s3."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW", "WIREFEED_"))}
    conn = {
        "conn_type": "aws",
        "login": s3.s3.access_key_id,
        "password": s3.s3.secret_access_key,
        "extra": {"endpoint_url": s3.s3.endpoint_url, "region_name": s3.s3.region},
    }
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": (
                "pipeline.jobs.airflow_support.SQLITE_CONNECT_ARGS"
            ),
            "AIRFLOW_CONN_WIREFEED_S3": json.dumps(conn),
            "WIREFEED_LAKE": lake,
        }
    )
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivateMinio:
    """One MinIO server process on 127.0.0.1:<port> with data in `data_dir`; kill() and start() at will."""

    user = "wf-private"
    password = f"private-{uuid.uuid4().hex}"

    def __init__(self, binary: str, data_dir: Path, port: int) -> None:
        self.binary, self.data_dir, self.port = binary, data_dir, port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def s3(self) -> S3Settings:
        return S3Settings(
            endpoint_url=self.endpoint,
            region="us-east-1",
            access_key_id=self.user,
            secret_access_key=self.password,
        )

    def settings(self, base: Settings | None = None) -> Settings:
        return replace(base or Settings(), s3=self.s3)

    def live(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/minio/health/live", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 60.0) -> None:
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.user,
            "MINIO_ROOT_PASSWORD": self.password,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_CALLHOME_ENABLE": "off",
        }
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir.parent / "minio.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [self.binary, "server", "--quiet", "--address", f"127.0.0.1:{self.port}", str(self.data_dir)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self.live():
            if self.proc.poll() is not None:
                raise RuntimeError(f"private MinIO exited with {self.proc.returncode}; see {log.name}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"private MinIO not live within {timeout}s; see {log.name}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: the server dies without finishing in-flight requests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture(scope="session")
def minio_binary() -> str:
    out = subprocess.run(
        [str(REPO / "scripts" / "minio.sh"), "bin"], capture_output=True, text=True, check=False
    )
    path = out.stdout.strip()
    if out.returncode != 0 or not os.access(path, os.X_OK):
        pytest.skip(f"MinIO binary unavailable: {out.stderr.strip()[-200:]}")
    return path


@pytest.fixture
def private_minio(minio_binary: str, tmp_path: Path) -> Iterator[PrivateMinio]:
    """A running MinIO of this test's own; killed at teardown."""
    server = PrivateMinio(minio_binary, tmp_path / "minio-data", free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()
