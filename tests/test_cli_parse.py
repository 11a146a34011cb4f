import io
import json
import re
import sys
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.errors import BadInputError
from pipeline.schema import arrow_schema, check_story

UNSAFE = re.compile(r"<script|(?:java|vb)script:\S|<[a-zA-Z/!][^>]*>", re.IGNORECASE)


def run_parse(capsys, *argv):
    code = main(["parse", *argv])
    out, err = capsys.readouterr()
    return (
        code,
        [json.loads(line) for line in out.splitlines()],
        [json.loads(line) for line in err.splitlines()],
    )


def as_story(row):
    """A JSON line back to a story dict (ISO datetimes -> datetime) for check_story."""
    for key in ("published_at", "updated_at", "fetched_at"):
        if row[key] is not None:
            row[key] = datetime.fromisoformat(row[key])
    return row


def test_seed_story_with_tags_references_and_attribution(capsys, shared_dir):
    seeds = sorted(str(p) for p in (shared_dir / "seeds").iterdir())
    code, stories, errors = run_parse(capsys, *seeds)
    assert code == 0 and errors == []
    (story,) = stories
    check_story(as_story(dict(story)))
    assert {"tiktok", "tariffs", "rare_earths"} <= set(story["topics"])
    assert story["topic_hits"] and story["taxonomy_version"]
    assert len(story["references"]) == 6
    assert story["references"][0] == {"paragraph": 1, "sources": [1, 4, 6, 7]}
    assert story["attribution"] == "Noah Wire Services"
    assert story["body"].count("\n\n") == 5
    for leak in ("Reference Map", "📌", "Paragraph 1 –", "Source:", "[4]"):
        assert leak not in story["body"]
    assert story["title"].startswith("US Treasury Secretary Scott Bessent is scheduled to meet")
    assert len(story["title"]) <= 120 and story["title"].endswith("…")


def test_directory_with_bad_inputs_exit_1_and_one_error_line_each(capsys, fixtures_dir):
    code, stories, errors = run_parse(capsys, "--no-tag", str(fixtures_dir))
    assert code == 1
    assert {(e["input"].rsplit("/", 1)[-1], e["error"]) for e in errors} == {
        ("binary.bin", "binary"),
        ("binary.gz", "binary"),
        ("empty.xml", "empty"),
        ("malformed.xml", "malformed"),
        ("no_items.xml", "no_entries"),
        ("not_a_feed.json", "malformed"),
        ("truncated.json", "malformed"),
        ("whitespace.txt", "empty"),
    }
    assert all(e["message"] for e in errors)
    origins = [s["origin"].rsplit("/", 1)[-1] for s in stories]
    assert origins == sorted(origins)  # files in sorted order
    assert {"atom03.xml", "atom10.xml", "cdf.xml", "jsonfeed11.json", "rss091.xml", "rss10_rdf.xml"} <= set(
        origins
    )
    assert {
        "rss20_content_encoded.xml",
        "truncated.xml",
        "wire_story.txt",
        "wrong_encoding.xml",
        "wrong_encoding.txt",
    } <= set(origins)
    for row in stories:
        check_story(as_story(row))
        assert all(not UNSAFE.search(v) for v in row.values() if isinstance(v, str))


def test_json_lines_format(capsys, fixtures_dir):
    code, (story, _), errors = run_parse(capsys, "--no-tag", str(fixtures_dir / "rss20_content_encoded.xml"))
    assert code == 0 and errors == []
    assert story["published_at"] == "2024-03-05T14:30:00+00:00"
    assert story["fetched_at"].endswith("+00:00")
    assert story["topics"] == [] and story["taxonomy_version"] == ""
    main(["parse", "--no-tag", str(fixtures_dir / "rss091.xml")])
    assert "Café" in capsys.readouterr().out  # ensure_ascii=False


def test_source_and_out_file(capsys, fixtures_dir, tmp_path):
    out = tmp_path / "s.jsonl"
    code = main(
        ["parse", "--no-tag", "--source", "My Wire", "--out", str(out), str(fixtures_dir / "atom10.xml")]
    )
    assert code == 0 and capsys.readouterr().out == ""
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["source"] for r in rows] == ["My Wire", "My Wire"]


def test_hidden_files_are_skipped_and_directories_recurse(capsys, fixtures_dir, tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    feed = (fixtures_dir / "rss091.xml").read_bytes()
    (tmp_path / "sub" / "b.xml").write_bytes(feed)
    (tmp_path / "a.xml").write_bytes(feed)
    (tmp_path / ".dot.xml").write_bytes(b"garbage")
    (tmp_path / ".hidden" / "c.xml").write_bytes(b"garbage")
    code, stories, errors = run_parse(capsys, "--no-tag", str(tmp_path))
    assert code == 0 and errors == []
    assert [s["origin"] for s in stories] == [str(tmp_path / "a.xml"), str(tmp_path / "sub" / "b.xml")]


def test_stdin(capsys, monkeypatch, fixtures_dir):
    data = (fixtures_dir / "wire_story.txt").read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, (story,), _ = run_parse(capsys, "--no-tag", "-")
    assert code == 0 and story["origin"] == "-" and story["attribution"] == "Noah Wire Services"


def test_parquet_output_has_exactly_the_arrow_schema(capsys, fixtures_dir, tmp_path):
    out = tmp_path / "stories.parquet"
    inputs = [str(fixtures_dir / n) for n in ("atom10.xml", "jsonfeed11.json", "wire_story.txt", "empty.xml")]
    code = main(["parse", "--format", "parquet", "--out", str(out), *inputs])
    assert code == 1  # empty.xml rejected, the rest written
    assert capsys.readouterr().out == ""
    table = pq.read_table(out)
    assert table.schema.equals(arrow_schema())  # list children read back as "element" (Parquet naming)
    assert table.schema.metadata == arrow_schema().metadata
    assert table.num_rows == 5
    rows = table.to_pylist()
    assert rows[4]["references"] == [{"paragraph": 1, "sources": [1, 2]}, {"paragraph": 2, "sources": [3]}]
    assert rows[0]["published_at"] == datetime(2024, 1, 10, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "argv", [["--format", "parquet", "atom10.xml"], ["atom10.xml", "does-not-exist.xml"], ["-", "-"]]
)
def test_usage_errors_exit_2(capsys, fixtures_dir, argv):
    argv = [str(fixtures_dir / a) if a.endswith(".xml") else a for a in argv]
    assert main(["parse", "--no-tag", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error" in err


def test_urls_use_pipeline_fetch(capsys, monkeypatch, fixtures_dir):
    import pipeline.sources.fetch
    from pipeline.sources.fetch import FetchResult

    body = (fixtures_dir / "rss20_content_encoded.xml").read_bytes()
    fetched = datetime(2024, 5, 5, tzinfo=UTC)
    calls = []

    def fake_fetch(url, *, settings, **_):
        calls.append(url)
        if url.endswith("/gone"):
            raise BadInputError("http_status", "HTTP 404")
        return FetchResult(200, body, {"content-type": "application/rss+xml"}, url, fetched, False)

    monkeypatch.setattr(pipeline.sources.fetch, "fetch", fake_fetch)
    code, stories, errors = run_parse(
        capsys, "--no-tag", "http://127.0.0.1:9/feed.xml", "http://127.0.0.1:9/gone"
    )
    assert code == 1 and calls == ["http://127.0.0.1:9/feed.xml", "http://127.0.0.1:9/gone"]
    assert errors == [{"input": "http://127.0.0.1:9/gone", "error": "http_status", "message": "HTTP 404"}]
    assert [s["feed_url"] for s in stories] == ["http://127.0.0.1:9/feed.xml"] * 2
    assert stories[0]["fetched_at"] == "2024-05-05T00:00:00+00:00"
