"""What can be checked of the Docker setup without a Docker engine: the files agree with the repository."""

import re
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "requirements" / "lock.txt"
AIRFLOW_SERVICES = (
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def dockerfile() -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return doc


def requirement_args() -> list[str]:
    (arg,) = [i for i in dockerfile() if i.startswith("ARG WIREFEED_REQUIREMENTS=")]
    (value,) = shlex.split(arg.partition("=")[2])  # one quoted word
    return value.split()


def test_from_is_the_locked_airflow_on_the_projects_python() -> None:
    froms = [i.split()[1] for i in dockerfile() if i.startswith("FROM ")]
    assert froms == [f"apache/airflow:{lock_pins()['apache-airflow']}-python3.11"]
    assert 'requires-python = ">=3.11,<3.12"' in (REPO / "pyproject.toml").read_text()


def test_every_copied_path_exists() -> None:
    copies = [shlex.split(i)[1:] for i in dockerfile() if i.startswith("COPY ")]
    sources = [src for args in copies for src in [a for a in args if not a.startswith("--")][:-1]]
    assert {"pipeline/", "schemas/", "dags/", "config/", "samples/", "requirements/lock.txt"} <= set(sources)
    missing = [src for src in sources if not (REPO / src).exists()]
    assert not missing, f"Dockerfile copies paths that do not exist: {missing}"
    ignored = (REPO / ".dockerignore").read_text().split()
    assert not [src for src in sources if src.rstrip("/") in ignored]


def test_installed_requirements_are_pinned_by_the_lock() -> None:
    pins = lock_pins()
    names = [re.split(r"[=<>!~\[]", r)[0].lower().replace("_", "-") for r in requirement_args()]
    assert "apache-airflow==" + pins["apache-airflow"] in requirement_args()
    assert not [n for n in names if n not in pins]
    project = (REPO / "pyproject.toml").read_text()
    deps = re.findall(
        r'^\s+"([A-Za-z0-9_.-]+)', project.split("dependencies = [", 1)[1].split("]", 1)[0], re.M
    )
    assert {d.lower() for d in deps} <= set(names), "a direct dependency of the package is not installed"
    assert any(i.startswith("RUN pip install -c requirements/lock.txt") for i in dockerfile())


def test_the_pip_install_step_resolves_against_the_lock_offline() -> None:
    """The image's pip step with this environment (installed from the same lock) as the only index."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--dry-run",
        "--no-index",
        "-c",
        str(LOCK),
        *requirement_args(),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Would install" not in result.stdout  # everything already satisfied at the locked versions


@pytest.mark.slow
def test_the_package_builds_a_wheel(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
        str(REPO),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("wirefeed-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        "pipeline/jobs/backfill.py",
        "pipeline/sources/archive.py",
        "pipeline/commands/backfill.py",
    } <= set(names)
    assert any(n.endswith("entry_points.txt") for n in names)


def test_compose_runs_airflow_with_postgres_and_minio() -> None:
    doc = compose()
    services = doc["services"]
    assert {"postgres", "minio", *AIRFLOW_SERVICES} <= set(services)
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES}
    assert (
        commands["airflow-scheduler"] == "scheduler" and commands["airflow-dag-processor"] == "dag-processor"
    )
    assert commands["airflow-triggerer"] == "triggerer" and commands["airflow-apiserver"] == "api-server"
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"] == "." and service["image"] == services["airflow-scheduler"]["image"]
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        conn = yaml.safe_load(env["AIRFLOW_CONN_WIREFEED_S3"])  # JSON is YAML
        assert conn["conn_type"] == "aws" and conn["extra"]["endpoint_url"] == "http://minio:9000"
        assert conn["password"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
        assert env["WIREFEED_LAKE"].startswith("s3://")
        deps = service["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        if name != "airflow-init":
            assert deps["minio"]["condition"] == "service_healthy"
            assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "minio"):
        assert services[name]["healthcheck"]["test"]


def test_minio_is_built_from_source_at_the_pinned_version() -> None:
    pinned = re.search(
        r'MINIO_VERSION="\$\{WIREFEED_MINIO_VERSION:-([^}]+)\}"', (REPO / "scripts/minio.sh").read_text()
    )
    assert pinned is not None
    build = compose()["services"]["minio"]["build"]["dockerfile_inline"]
    assert f"go install github.com/minio/minio@{pinned[1]}" in build
    assert re.search(r"^FROM golang:\S+ AS build$", build, re.M) and "COPY --from=build" in build
