"""A deployment-like Airflow 3 on loopback, for the integration tests of the DAGs under a real scheduler.

PostgreSQL holds the metadata and Celery's results, Redis is Celery's broker (both from scripts/services.sh,
fresh per test session). The control plane (api-server, dag-processor, scheduler with CeleryExecutor) shares
one AIRFLOW_HOME; every Celery worker is a separate process in a UTS namespace of its own (so its own
hostname, as a second machine would have), with its own AIRFLOW_HOME, its own copy of dags/ and of the feeds
file, and its own log-server port: the workers share nothing with each other or the control plane but the
database and MinIO. S3 credentials exist only as the Airflow connection wirefeed_s3 (in the database,
encrypted with the Fernet key), as an operator would create it; the pools and the Variable
wirefeed_archive are made with the CLI as well (README, "Deploying").
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import pytest
from cryptography.fernet import Fernet

from pipeline.config import Settings
from tests.integration.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(REPO / ".venv" / "bin" / "airflow")
POOLS = {"wirefeed_fetch": 4, "wirefeed_s3": 1}


class AirflowStack:
    """Start with `start()`, then `start_worker(name)` per worker; `stop()` ends every process."""

    def __init__(
        self,
        root: Path,
        *,
        db_url: str,
        broker_url: str,
        s3: Settings,
        config: Mapping[str, str],
        files: Mapping[str, Path] | None = None,
    ) -> None:
        """`config`: WIREFEED_* settings every component gets (a deployment's config); `files`: files each
        host gets its own copy of, exposed as env var -> path in that host's home (e.g. WIREFEED_FEEDS)."""
        self.root, self.db_url, self.s3 = root, db_url, s3
        self.api_port = free_port()
        self.files = dict(files or {})
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.homes: dict[str, Path] = {}
        # every component of one deployment shares these (from a secrets store in production)
        self.shared = {
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",  # no DNS lookup of the hostname
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__CELERY__BROKER_URL": broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),  # 64 random bytes
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # the REST API without a login
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            **config,
        }

    # --- processes ------------------------------------------------------------------------------------

    def host_env(self, host: str) -> dict[str, str]:
        """The environment of one host: its own home, DAG folder and file copies."""
        home = self.homes.get(host)
        if home is None:
            home = self.homes[host] = self.root / host
            home.mkdir(parents=True)
            shutil.copytree(REPO / "dags", home / "dags", ignore=shutil.ignore_patterns("__pycache__"))
            for path in self.files.values():
                shutil.copy(path, home / path.name)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW", "WIREFEED_"))}
        env.update(self.shared)
        env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags")})
        env.update({name: str(home / path.name) for name, path in self.files.items()})
        return env

    def cli(self, *args: str, timeout: float = 300, env: Mapping[str, str] | None = None) -> str:
        """An `airflow` command as an operator runs it on the control host."""
        out = subprocess.run(
            [AIRFLOW, *args],
            env={**self.host_env("control"), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.root,
        )
        assert out.returncode == 0, f"airflow {' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out.stdout

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> None:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
        self.procs[name] = subprocess.Popen(
            argv, env=dict(env), cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def start(self) -> None:
        """Migrate the database, create pools, connection and archive Variable, start the control plane."""
        self.cli("db", "migrate", timeout=600)
        pools = self.root / "pools.json"
        pools.write_text(json.dumps({n: {"slots": s, "description": "wirefeed"} for n, s in POOLS.items()}))
        self.cli("pools", "import", str(pools))
        s3 = self.s3.s3
        conn = {
            "conn_type": "aws",
            "login": s3.access_key_id,
            "password": s3.secret_access_key,
            "extra": {"endpoint_url": s3.endpoint_url, "region_name": s3.region},
        }
        self.cli("connections", "add", "wirefeed_s3", "--conn-json", json.dumps(conn))
        env = self.host_env("control")
        self._spawn("api-server", [AIRFLOW, "api-server"], env)
        self._spawn("dag-processor", [AIRFLOW, "dag-processor"], env)
        # --skip-serve-logs: the default log server would bind [::]:8793 (and meet other test runs there)
        self._spawn("scheduler", [AIRFLOW, "scheduler", "--skip-serve-logs"], env)
        self.wait(
            "both DAGs to be parsed",
            lambda: len(self.query("select dag_id from serialized_dag where dag_id like 'wire_%%'")) >= 2,
        )

    def start_worker(self, hostname: str) -> None:
        """A Celery worker on a host of its own named `hostname` (a UTS namespace: root only)."""
        env = {**self.host_env(hostname), "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        script = 'hostname "$1" && exec "$2" celery worker --concurrency 2 --without-gossip --without-mingle'
        argv = [
            "unshare",
            "--uts",
            "--fork",
            "--kill-child",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            hostname,
            AIRFLOW,
        ]
        self._spawn(hostname, argv, env)
        self.wait(
            f"Celery worker {hostname}", lambda: f"celery@{hostname} ready" in self.tail(hostname, 20000)
        )

    def restart(self, name: str, env_changes: Mapping[str, str]) -> None:
        """Restart a control-plane process with changed settings (e.g. the dag-processor's parse-time env)."""
        self._stop(self.procs.pop(name))
        args = {"dag-processor": ["dag-processor"], "scheduler": ["scheduler", "--skip-serve-logs"]}[name]
        self._spawn(name, [AIRFLOW, *args], {**self.host_env("control"), **env_changes})

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            self._wait_or_kill(proc)

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        self._wait_or_kill(proc)

    @staticmethod
    def _wait_or_kill(proc: subprocess.Popen[bytes]) -> None:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    # --- looking at it --------------------------------------------------------------------------------

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} exited ({proc.returncode}):\n{self.tail(name)}"

    def tail(self, name: str, n: int = 4000) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def task_errors(self, n: int = 1500) -> str:
        """The end of every task attempt log, on any worker, that reports an error."""
        out = []
        for path in sorted(self.root.glob("*/logs/dag_id=*/run_id=*/task_id=*/**/attempt=*.log")):
            text = path.read_text(errors="replace")
            if '"error"' in text or "Traceback" in text:
                out.append(f"--- {path.relative_to(self.root)}\n{text[-n:]}")
        return "\n".join(out)

    def wait(self, what: str, check: Callable[[], Any], timeout: float = 600) -> Any:
        """Poll `check` until it returns something truthy (an upper bound, never a speed assertion)."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {n}\n{self.tail(n, 2500)}" for n in self.procs)
                pytest.fail(f"timed out waiting for {what}\n{logs}\n{self.task_errors()}")
            time.sleep(2)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        url = urlsplit(self.db_url.replace("postgresql+psycopg2", "postgresql"))
        conn = psycopg2.connect(
            host=url.hostname, port=url.port, user=url.username, dbname=url.path.lstrip("/")
        )
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        except psycopg2.errors.UndefinedTable:  # not migrated yet
            return []
        finally:
            conn.close()

    def api(self, method: str, path: str) -> Any:
        """A call of the REST API (a token first: GET /auth/token, all-admins mode as in docker-compose)."""
        base = f"http://127.0.0.1:{self.api_port}"
        with urllib.request.urlopen(f"{base}/auth/token", timeout=60) as resp:
            token = json.load(resp)["access_token"]
        request = urllib.request.Request(
            f"{base}{path}", method=method, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            return json.load(resp)

    def runs(self, dag_id: str) -> dict[str, tuple[str, str]]:
        """logical date (YYYY-MM-DD) -> (state, run_type) of the DAG's runs."""
        rows = self.query("select logical_date, state, run_type from dag_run where dag_id = %s", dag_id)
        return {str(ld)[:10]: (str(state), str(kind)) for ld, state, kind in rows}

    def backfill(self, dag_id: str, first: str, last: str, *args: str) -> dict[str, str]:
        """`airflow backfill create` (waiting for the previous backfill to be marked complete, as Airflow
        allows one at a time), then wait for it to complete; the states of the runs in [first, last]."""
        before = len(self.query("select id from backfill where dag_id = %s", dag_id))
        self.cli("backfill", "create", "--dag-id", dag_id, "--from-date", first, "--to-date", last, *args)

        def done() -> bool:
            rows = self.query("select completed_at from backfill where dag_id = %s", dag_id)
            return len(rows) == before + 1 and all(r[0] is not None for r in rows)

        self.wait(f"backfill {dag_id} {first}..{last}", done)
        return {d: s for d, (s, _) in self.runs(dag_id).items() if first <= d <= last}

    def task_instances(self, dag_id: str, day: str) -> dict[tuple[str, int], dict[str, Any]]:
        """(task_id, map_index) -> state, hostname, try_number, start, end, pool, in the run of `day`."""
        rows = self.query(
            "select ti.task_id, ti.map_index, ti.state, ti.hostname, ti.try_number, ti.start_date,"
            " ti.end_date, ti.pool from task_instance ti"
            " join dag_run dr on dr.dag_id = ti.dag_id and dr.run_id = ti.run_id"
            " where ti.dag_id = %s and to_char(dr.logical_date at time zone 'UTC', 'YYYY-MM-DD') = %s",
            dag_id,
            day,
        )
        keys = ("state", "hostname", "try_number", "start", "end", "pool")
        return {(r[0], r[1]): dict(zip(keys, r[2:], strict=True)) for r in rows}

    def xcom(self, dag_id: str, day: str, task_id: str) -> Any:
        rows = self.query(
            "select x.value from xcom x join dag_run dr on dr.dag_id = x.dag_id and dr.run_id = x.run_id"
            " where x.dag_id = %s and x.task_id = %s and x.key = 'return_value' and x.map_index = -1"
            " and to_char(dr.logical_date at time zone 'UTC', 'YYYY-MM-DD') = %s",
            dag_id,
            task_id,
            day,
        )
        return rows[0][0] if rows else None

    def asset_events(self, dag_id: str) -> list[dict[str, Any]]:
        """Events on the stories asset published by `dag_id`'s runs: {"run_id", "task_id", "extra"}."""
        rows = self.query(
            "select e.source_run_id, e.source_task_id, e.extra from asset_event e"
            " join asset a on a.id = e.asset_id where a.name = 'wirefeed_stories' and e.source_dag_id = %s",
            dag_id,
        )
        return [{"run_id": r[0], "task_id": r[1], "extra": r[2]} for r in rows]
