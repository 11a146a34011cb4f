"""The package as users install it: every subpackage listed, the schemas shipped as package data, and a wheel
that runs from a fresh virtualenv (built, installed offline, then `wirefeed parse` on the seed and `wirefeed
run` on the bundled samples)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from pipeline.schema import schemas_dir

REPO = Path(__file__).resolve().parent.parent


def test_every_package_under_pipeline_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts) for init in (REPO / "pipeline").rglob("__init__.py")
    }
    assert on_disk | {"pipeline.schemas"} == listed


def test_schemas_are_read_through_importlib_resources_from_the_single_source() -> None:
    assert schemas_dir().resolve() == (REPO / "schemas").resolve()  # an editable install maps, not copies
    assert {"story.v1.yaml", "topics.yaml"} <= {p.name for p in schemas_dir().iterdir()}


def _build_wheel(out: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    result = subprocess.run([*cmd, str(REPO)], capture_output=True, text=True, check=False, cwd=out)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = out.glob("wirefeed-*.whl")
    return wheel


def _fresh_venv(path: Path, wheel: Path) -> Path:
    """A new venv holding only the wheel (installed offline, --no-index --no-deps); the project venv's
    site-packages is appended through a .pth file so the dependencies resolve, and since site does not read
    .pth files inside such a path, the project's own editable install stays invisible."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(site, "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(python),
        "install",
        "-q",
        "--no-index",
        "--no-deps",
    ]
    result = subprocess.run([*install, str(wheel)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return path / "bin"


@pytest.mark.slow
def test_the_wheel_runs_from_a_fresh_venv(tmp_path: Path, shared_dir: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "pipeline/schemas/story.v1.yaml",
        "pipeline/schemas/topics.yaml",
        "pipeline/schemas/topics.sense.json",
        "pipeline/py.typed",
    } <= names
    assert not any(n.startswith("schemas/") for n in names)  # shipped inside the package, not beside it
    bin_dir = _fresh_venv(tmp_path / "venv", wheel)
    work = tmp_path / "elsewhere"  # not the repository: nothing may be found relative to it
    work.mkdir()

    def wirefeed(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / "wirefeed"), *args], capture_output=True, text=True, check=False, cwd=work
        )

    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import pipeline.schema as s; print(s.__file__, s.schemas_dir())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=work,
    ).stdout
    assert str(tmp_path / "venv") in where and str(REPO) not in where
    accel = [str(bin_dir / "python"), "-c", "from pipeline.tagging import _accel; print(_accel.__file__)"]
    if shutil.which("cc") or shutil.which("gcc") or os.environ.get("CI"):  # built into the wheel
        built = subprocess.run(accel, capture_output=True, text=True, check=False, cwd=work)
        assert built.returncode == 0 and str(tmp_path / "venv") in built.stdout, built.stderr[-2000:]

    version = wirefeed("--version")
    assert version.returncode == 0 and version.stdout.strip() == "wirefeed 0.1.0"

    seeds = sorted(str(p) for p in (shared_dir / "seeds").iterdir() if p.is_file())
    parsed = wirefeed("parse", *seeds)
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    stories = [json.loads(line) for line in parsed.stdout.splitlines()]
    assert len(stories) == len(seeds) and all(s["topics"] for s in stories)  # the taxonomy was found

    lake = tmp_path / "lake"
    feeds = str(REPO / "config" / "samples.yaml")
    ran = wirefeed("run", "--feeds", feeds, "--lake", str(lake), "--date", "2026-11-20", "--json")
    assert ran.returncode == 0, ran.stderr[-2000:]
    summary = json.loads(ran.stdout)
    assert summary["counts"]["new"] == 8 and summary["validation"]["ok"] is True
