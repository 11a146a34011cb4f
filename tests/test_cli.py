"""Command-line conventions: --version, -v anywhere, help for every flag, exit codes, --json summaries."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import __version__, cli
from pipeline.errors import BadInputError, ConfigError, FatalError, RetriableError
from pipeline.lake.store import NotFoundError

REPO = Path(__file__).resolve().parent.parent
SAMPLES = str(REPO / "config" / "samples.yaml")


def wirefeed(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, check=False
    )


def subcommands() -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_version() -> None:
    done = wirefeed("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"wirefeed {__version__}"


def test_top_level_help_describes_every_command_and_the_exit_codes() -> None:
    text = wirefeed("--help").stdout
    for name in subcommands():
        assert f"\n    {name} " in text
    assert "exit codes:" in text and "3  transient" in text
    assert "pipeline.commands" not in text and "Argument parsing" not in text


def test_every_flag_of_every_command_has_help_and_to_says_inclusive() -> None:
    for name, parser in subcommands().items():
        assert parser.description, name
        for action in parser._actions:
            assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)
            if "--to" in action.option_strings:
                assert "inclusive" in action.help, name


@pytest.mark.parametrize("argv", [["-vv", "validate"], ["validate", "-vv"], ["-v", "validate", "-v"]])
def test_verbose_is_accepted_before_or_after_the_command(argv: list[str], tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    lake.mkdir()
    done = wirefeed(*argv, "--lake", str(lake), "--allow-empty")  # an empty lake is an error otherwise
    assert done.returncode == 0, done.stderr
    assert " DEBUG " in done.stderr or " INFO " in done.stderr
    assert " INFO pipeline.lake.validate: validated 0 manifests" in done.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("bad setting"), 2),
        (RetriableError("store unreachable"), 3),
        (NotFoundError("no such object"), 4),
        (FatalError("corrupt"), 4),
        (BadInputError("empty", "input is empty"), 1),
    ],
)
def test_errors_map_to_exit_codes_with_one_line(
    error: Exception, code: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.commands import validate

    def fail(args: argparse.Namespace) -> int:
        raise error

    monkeypatch.setattr(validate, "run", fail)
    assert cli.main(["validate", "--json"]) == code
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and out.err.startswith(f"wirefeed validate: {error.kind}: ")  # type: ignore[attr-defined]
    assert json.loads(out.out) == {
        "ok": False,
        "error": error.kind,  # type: ignore[attr-defined]
        "message": error.message,  # type: ignore[attr-defined]
        "exit_code": code,
    }


def test_usage_errors_exit_2() -> None:
    assert wirefeed("validate", "--from", "yesterday").returncode == 2
    assert wirefeed("compact", "--from", "2026-11-20").returncode == 2  # --to is required
    assert wirefeed("no-such-command").returncode == 2


def test_run_json_and_exit_codes(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    done = wirefeed("run", "--feeds", SAMPLES, "--lake", lake, "--date", "2026-11-20", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] and doc["counts"]["new"] == 8 and doc["validation"]["rows"] == 8
    assert doc["manifest"] == "_manifests/daily/2026-11-20.json" and "sample-wire-madrid" not in doc["failed"]
    assert "feeds: ok 4" in done.stderr  # the table goes to stderr with --json

    (tmp_path / "empty.xml").write_bytes(b"")
    broken = tmp_path / "feeds.yaml"
    text = Path(SAMPLES).read_text().replace("../samples/rss-trade-desk.xml", str(tmp_path / "empty.xml"))
    broken.write_text(text.replace("../samples/", str(REPO / "samples") + "/"))
    partial = wirefeed("run", "--feeds", str(broken), "--lake", lake, "--date", "2026-11-21")
    assert partial.returncode == 1  # one feed failed; the others landed
    assert "feeds: ok 3, not_modified 0, failed 1" in partial.stdout

    validated = wirefeed("validate", "--lake", lake, "--json")
    assert validated.returncode == 0 and json.loads(validated.stdout)["rows"] == 8


def test_files_refuses_a_lake_with_a_malformed_manifest(tmp_path: Path) -> None:
    (tmp_path / "_manifests" / "daily").mkdir(parents=True)
    (tmp_path / "_manifests" / "daily" / "2026-11-20.json").write_text("{not json")
    done = wirefeed("files", "--lake", str(tmp_path))
    assert done.returncode == 4 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "wirefeed files: fatal: manifest _manifests/daily/2026-11-20.json is not valid JSON: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
    ]


def _wirefeed(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args], capture_output=True, cwd=cwd, timeout=120
    )


def test_what_the_file_system_refuses_is_one_line_and_an_exit_code_never_a_traceback(tmp_path: Path) -> None:
    """Found by a command-line fuzz: a name too long for the file system, an --out that is a directory or
    in no directory each ended in a Python traceback."""
    long = "a" * 5000
    feed = Path(__file__).resolve().parent.parent / "samples" / "rss-trade-desk.xml"
    cases = [
        (["parse", "--no-tag", long], 2, "no such file or directory"),
        (["parse", "--no-tag", "--out", str(tmp_path), str(feed)], 2, "is a directory"),
        (
            ["parse", "--no-tag", "--out", str(tmp_path / "no" / "x.jsonl"), str(feed)],
            2,
            "directory does not",
        ),
        (
            ["files", "--lake", long, "--from", "2025-01-01", "--to", "2025-01-02"],
            4,
            "os_error: File name too long",
        ),
    ]
    for args, code, says in cases:
        done = _wirefeed(*args, cwd=tmp_path)
        assert done.returncode == code, (args, done.stderr[-300:])
        assert b"Traceback" not in done.stderr and says.encode() in done.stderr
        assert len(done.stderr.splitlines()) == 1
