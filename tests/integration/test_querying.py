"""docs/querying.md runs: its Python blocks are extracted from the page and executed in order against a real
MinIO lake, each output block must be what the block before it printed, and every reader's row count must
agree with `wirefeed validate`. The same blocks run again after `wirefeed compact`: same answers.

The example lake: the bundled samples landed for 2026-11-20, one story edited the next day (a new version),
the seed story backfilled for 2025-09-10.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "querying.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```$", re.S | re.M)


@dataclass
class Block:
    lang: str
    code: str
    output: str | None  # the ```text block that follows it, if any


def doc_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    for match in FENCE.finditer(text):
        lang, body = match.group(1).strip(), match.group(2)
        body = "\n" * text.count("\n", 0, match.start(2)) + body  # tracebacks name the page's lines
        if lang == "text" and blocks and blocks[-1].lang.startswith("python") and blocks[-1].output is None:
            blocks[-1].output = match.group(2)
        elif lang.startswith("python"):
            blocks.append(Block(lang, body, None))
    return blocks


def test_the_page_has_a_block_and_an_output_per_reader() -> None:
    blocks = doc_blocks(DOC.read_text())
    code = "\n".join(b.code for b in blocks)
    for reader in ("pyarrow.dataset", "pl.scan_parquet", "duckdb.connect", "SparkSession"):
        assert reader in code
    assert [b.lang for b in blocks] == ["python"] * 4 + ["python spark"] and all(b.output for b in blocks)


def build_lake(tmp_path: Path, lake: str) -> None:
    samples = REPO / "samples"
    edited = tmp_path / "rss-trade-desk.xml"
    edited.write_text((samples / "rss-trade-desk.xml").read_text().replace("90-day", "120-day"))
    day2 = tmp_path / "day2.yaml"
    day2.write_text(
        (REPO / "config" / "samples.yaml")
        .read_text()
        .replace("../samples/rss-trade-desk.xml", str(edited))
        .replace("../samples/", f"{samples}/")
    )
    archive = tmp_path / "archive" / "2025" / "09" / "10"
    archive.mkdir(parents=True)
    for seed in (REPO.parent / "shared" / "seeds").glob("*.txt"):
        (archive / seed.name).write_bytes(seed.read_bytes())
    feeds = str(REPO / "config" / "samples.yaml")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["run", "--feeds", feeds, "--lake", lake, "--date", "2026-11-20"]) == 0
        assert main(["run", "--feeds", str(day2), "--lake", lake, "--date", "2026-11-21"]) == 0
        backfill = ["backfill", "--archive", str(tmp_path / "archive"), "--lake", lake]
        assert main([*backfill, "--from", "2025-09-10", "--to", "2025-09-10"]) == 0


def run_blocks(blocks: list[Block]) -> list[str]:
    """Execute the blocks in one namespace, as a reader pasting them in order would; what each printed."""
    namespace: dict[str, Any] = {"__name__": "querying_md"}
    outputs = []
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block.code, str(DOC), "exec"), namespace)
        outputs.append(out.getvalue())
    return outputs


def counts(printed: str) -> tuple[int, int]:
    match = re.search(r"rows (\d+) stories (\d+)", printed)
    assert match, printed
    return int(match.group(1)), int(match.group(2))


@pytest.mark.slow
def test_every_snippet_runs_against_minio_and_agrees_with_validate(
    s3_lake_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build_lake(tmp_path, s3_lake_uri)
    monkeypatch.setenv("WIREFEED_LAKE", s3_lake_uri)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    capsys.readouterr()
    assert main(["validate", "--lake", s3_lake_uri, "--json"]) == 0
    validated = json.loads(capsys.readouterr().out)
    assert validated["rows"] == 10

    blocks = [b for b in doc_blocks(DOC.read_text()) if b.lang == "python"]
    outputs = run_blocks(blocks)
    assert outputs == [b.output for b in blocks]  # each block prints what the page shows under it
    reader_counts = [counts(printed) for printed in outputs[1:]]
    assert reader_counts == [(validated["rows"], 9)] * 3  # pyarrow, polars, DuckDB: rows as validate says

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["compact", "--lake", s3_lake_uri, "--from", "2025-09-01", "--to", "2026-12-31"]) == 0
    after = run_blocks(blocks)
    assert after[0].startswith("3 files")  # dt=2026-11-20 held two files, now one
    assert after[1:] == outputs[1:]  # and every reader gets the same answers


@pytest.mark.slow
def test_the_spark_block_where_pyspark_is_installed(
    s3_lake_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not in CI (pyspark, Java 17 and the hadoop-aws jars from Maven Central are not part of the lock)."""
    pytest.importorskip("pyspark")
    build_lake(tmp_path, s3_lake_uri)
    monkeypatch.setenv("WIREFEED_LAKE", s3_lake_uri)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    setup, *_, spark = doc_blocks(DOC.read_text())
    assert run_blocks([setup, spark])[1].endswith(str(spark.output))
