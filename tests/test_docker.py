"""What can be checked of the Docker setup without a Docker engine: the files agree with the repository."""

import functools
import json
import os
import re
import secrets
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
    "airflow-worker",
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
    # the compiled scan, the accelerator and the text passes are built where a compiler is (here; the image:
    # the next test)
    for module in ("tagging/_automaton", "tagging/_accel", "parsing/_accel"):
        assert any(n.startswith(f"pipeline/{module}.") and n.endswith(".so") for n in names), names


def test_the_image_compiles_the_tagger_scan_and_fails_without_it() -> None:
    text = (REPO / "Dockerfile").read_text()
    compiler = text.index("apt-get install -y --no-install-recommends gcc libc6-dev")
    install = text.index("pip install --no-deps -e .")
    assert compiler < install < text.index('python -c "import pipeline.tagging._automaton"')
    assert install < text.index('python -c "import pipeline.tagging._accel"')
    assert install < text.index('python -c "import pipeline.parsing._accel"')
    assert text.rindex("USER airflow") > compiler  # back to the image's user after apt-get
    assert "**/*.so" in (REPO / ".dockerignore").read_text().split()  # a host build never enters the image


ENV_EXAMPLE = REPO / ".env.example"
CELERY_APP = "airflow.providers.celery.executors.celery_executor.app"


def env_example() -> dict[str, str]:
    pairs = [ln.split("=", 1) for ln in ENV_EXAMPLE.read_text().splitlines() if "=" in ln and ln[0] != "#"]
    return {k.strip(): v.strip() for k, v in pairs}


def interpolate(text: str, env: dict[str, str]) -> str:
    """docker compose's variable substitution: ${VAR}, ${VAR:-default}, ${VAR:?error}; $$ is a literal $."""

    def value(match: re.Match[str]) -> str:
        name, op, arg = match[1], match[2], match[3]
        if env.get(name):
            return env[name]
        if op == ":?":
            raise ValueError(f"{name}: {arg}")
        return arg if op == ":-" else ""

    text = re.sub(r"(?<!\$)\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", value, text)
    return text.replace("$$", "$")


@functools.cache
def filled_env() -> dict[str, str]:
    """.env.example filled in the way it says (its own commands); one for the whole module."""
    from cryptography.fernet import Fernet

    env = env_example()
    env.update(
        AIRFLOW_FERNET_KEY=Fernet.generate_key().decode(),
        AIRFLOW_JWT_SECRET=secrets.token_urlsafe(64),
        POSTGRES_PASSWORD="pg-" + secrets.token_hex(8),
        MINIO_ROOT_PASSWORD="minio-" + secrets.token_hex(8),
    )
    return env


@functools.cache
def deployed() -> dict[str, Any]:
    """The compose file as docker compose would run it with a filled-in .env."""
    doc: dict[str, Any] = yaml.safe_load(interpolate((REPO / "docker-compose.yml").read_text(), filled_env()))
    return doc


def init_script() -> list[str]:
    init = deployed()["services"]["airflow-init"]
    assert init["entrypoint"] == "/bin/bash" and init["command"][0] == "-euc"
    return [ln.strip() for ln in init["command"][1].splitlines() if ln.strip()]


def test_compose_runs_airflow_on_celery_with_postgres_redis_and_minio() -> None:
    services = deployed()["services"]
    assert {"postgres", "redis", "minio", *AIRFLOW_SERVICES} <= set(services)
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["build"] == "." and service["image"] == services["airflow-scheduler"]["image"]
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        db = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert db.startswith("postgresql+psycopg2://airflow:") and db.endswith("@postgres/airflow")
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + db
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["WIREFEED_LAKE"].startswith("s3://") and "AIRFLOW_CONN_WIREFEED_S3" not in env
        assert "airflow-logs:/opt/airflow/logs" in service["volumes"]
        assert service["user"] == ("0:0" if name == "airflow-init" else "50000:0")  # ${AIRFLOW_UID:-50000}
        deps = service["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        if name != "airflow-init":
            for dep in ("redis", "minio"):
                assert deps[dep]["condition"] == "service_healthy"
            assert deps["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["airflow-worker"]["deploy"]["replicas"] >= 2  # workers on hosts of their own
    assert "airflow-logs" in deployed()["volumes"]
    assert services["minio"]["environment"]["MINIO_ROOT_PASSWORD"] == filled_env()["MINIO_ROOT_PASSWORD"]


def test_secrets_come_from_env_and_the_example_says_how_to_make_them() -> None:
    raw = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", raw))
    example = env_example()
    assert used <= set(example), f"not in .env.example: {used - set(example)}"
    for name in ("AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"):
        assert re.search(r"\$\{" + name + r":\?", raw), f"{name} must be required"
        assert example[name] == "", f"{name}: no secret in the example"
        with pytest.raises(ValueError, match=name):
            interpolate(raw, {**filled_env(), name: ""})
    env = deployed()["services"]["airflow-scheduler"]["environment"]
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"].encode()) >= 64
    assert (
        env["AIRFLOW__CORE__FERNET_KEY"] == filled_env()["AIRFLOW_FERNET_KEY"]
        or env["AIRFLOW__CORE__FERNET_KEY"]
    )
    text = ENV_EXAMPLE.read_text()
    for command in re.findall(r"#\s+(python -c .+)$", text, re.M):  # the example's own generators work
        out = subprocess.run(shlex.split(command.replace("python", sys.executable, 1)), capture_output=True)
        assert out.returncode == 0 and out.stdout.strip(), command
        if "Fernet" in command:
            from cryptography.fernet import Fernet

            Fernet(out.stdout.strip())
        else:
            assert len(out.stdout.strip()) >= 64
    assert "/.env" in (REPO / ".gitignore").read_text().split()  # secrets never committed


def test_init_migrates_and_creates_the_pools_and_the_connection() -> None:
    sys.path.insert(0, str(REPO / "dags"))
    try:
        import _common
    finally:
        sys.path.remove(str(REPO / "dags"))
    lines = init_script()
    assert "airflow db migrate" in lines
    pools = {}
    for line in lines:
        words = shlex.split(line)
        if words[:3] == ["airflow", "pools", "set"]:
            pools[words[3]] = int(words[4])
    assert pools == _common.POOLS == {"wirefeed_fetch": 4, "wirefeed_s3": 1}
    (add,) = [shlex.split(ln) for ln in lines if ln.startswith("airflow connections add")]
    opts = dict(zip(add[4::2], add[5::2], strict=True))
    assert add[3] == "wirefeed_s3" and opts["--conn-type"] == "aws"
    assert json.loads(opts["--conn-extra"])["endpoint_url"] == "http://minio:9000"
    env = deployed()["services"]["airflow-init"]["environment"]
    assert opts["--conn-login"] == "${WIREFEED_S3_KEY}" and env["WIREFEED_S3_KEY"] == "wirefeed"
    assert opts["--conn-password"] == "${WIREFEED_S3_SECRET}"
    assert env["WIREFEED_S3_SECRET"] == deployed()["services"]["minio"]["environment"]["MINIO_ROOT_PASSWORD"]
    script = "\n".join(deployed()["services"]["airflow-init"]["command"][1:])
    assert subprocess.run(["bash", "-n", "-c", script], check=False).returncode == 0


def test_airflow_services_have_healthchecks() -> None:
    services = deployed()["services"]
    for name in ("postgres", "redis", "minio", *AIRFLOW_SERVICES[1:]):
        assert services[name]["healthcheck"]["test"], name
    checks = {name: " ".join(services[name]["healthcheck"]["test"]) for name in AIRFLOW_SERVICES[1:]}
    assert "--job-type DagProcessorJob" in checks["airflow-dag-processor"]
    assert "--job-type TriggererJob" in checks["airflow-triggerer"]
    assert ":8974/health" in checks["airflow-scheduler"]
    assert services["airflow-scheduler"]["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    assert f"--app {CELERY_APP} inspect ping" in checks["airflow-worker"]


def airflow_commands() -> list[list[str]]:
    """Every `airflow ...` command the compose file runs: service commands, init steps, healthchecks."""
    services = deployed()["services"]
    commands = [["airflow", *services[name]["command"]] for name in AIRFLOW_SERVICES[1:]]
    commands += [shlex.split(line.split(" || ")[0]) for line in init_script() if line.startswith("airflow ")]
    for name in AIRFLOW_SERVICES[1:]:
        test = services[name]["healthcheck"]["test"]
        line = test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:])
        if line.startswith("airflow "):
            commands.append(shlex.split(line))
    return commands


@pytest.mark.slow
def test_every_command_exists_in_the_images_airflow(tmp_path: Path) -> None:
    """Parsed by the Airflow CLI of the locked version (the image's), Celery commands included."""
    commands = [c[1:] for c in airflow_commands()]
    assert len(commands) >= 10
    code = (
        "import json, sys\n"
        "from airflow.cli.cli_parser import get_parser\n"
        "bad = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    try:\n"
        "        get_parser().parse_args(argv)\n"
        "    except SystemExit:\n"
        "        bad.append(argv)\n"
        "print(json.dumps(bad))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor"}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(commands)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
    # the worker's healthcheck: Airflow's Celery app loads and `inspect` takes a destination
    celery = Path(sys.executable).with_name("celery")
    help_out = subprocess.run(
        [str(celery), "--app", CELERY_APP, "inspect", "--help"], env=env, capture_output=True, text=True
    )
    assert help_out.returncode == 0 and "--destination" in help_out.stdout, help_out.stderr[-2000:]


def test_minio_is_built_from_source_at_the_pinned_version() -> None:
    pinned = re.search(
        r'MINIO_VERSION="\$\{WIREFEED_MINIO_VERSION:-([^}]+)\}"', (REPO / "scripts/minio.sh").read_text()
    )
    assert pinned is not None
    build = compose()["services"]["minio"]["build"]["dockerfile_inline"]
    assert f"go install github.com/minio/minio@{pinned[1]}" in build
    assert re.search(r"^FROM golang:\S+ AS build$", build, re.M) and "COPY --from=build" in build
