"""`wirefeed tag` and `wirefeed eval-tags` through the real argument parser."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.tagging.rules import Taxonomy, default_tagger

EVAL_SET = Path(__file__).parent / "data" / "tag_eval.jsonl"
TRAIN_A = Path(__file__).parent / "data" / "tags" / "train_a.jsonl"


def run_tag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, *args: str
) -> tuple[int, list[Any], list[Any]]:
    """Run `wirefeed tag ARGS` on `stdin`: (exit code, stdout objects, stderr objects)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["tag", *args])
    out, err = capsys.readouterr()
    return (
        code,
        [json.loads(line) for line in out.splitlines()],
        [json.loads(line) for line in err.splitlines()],
    )


def test_tag_adds_topics_hits_and_version(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {"id": "a", "title": "Neodymium prices jump", "body": "Magnet makers pay more.", "extra": [1]},
        {"id": "b", "title": "Storm warning", "summary": "The TikTok ban was upheld; ByteDance must sell."},
    ]
    code, out, err = run_tag(monkeypatch, capsys, "".join(json.dumps(x) + "\n" for x in lines))
    assert (code, err) == (0, [])
    assert [o["id"] for o in out] == ["a", "b"]
    assert out[0]["extra"] == [1]  # the rest of the object passes through
    assert out[0]["topics"] == ["rare_earths"]
    assert out[0]["topic_hits"][:2] == [  # the mentions, then the sense model's strongest features
        {"topic": "rare_earths", "term": "magnet", "count": 1, "in_title": False},
        {"topic": "rare_earths", "term": "neodymium", "count": 1, "in_title": True},
    ]
    assert all(h["term"].startswith("sense:") for h in out[0]["topic_hits"][2:])
    assert out[1]["topics"] == ["tiktok"]
    assert {o["taxonomy_version"] for o in out} == {default_tagger().version}


def test_tag_reports_bad_lines_and_carries_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stdin = "\n".join(
        [
            "not json",
            json.dumps({"id": 1, "title": "US raises tariffs on Chinese steel", "body": ""}),
            json.dumps(["a", "list"]),
            json.dumps({"title": "no id"}),
            json.dumps({"id": 2, "title": 5}),
            json.dumps({"id": 3}),
            "",
        ]
    )
    code, out, err = run_tag(monkeypatch, capsys, stdin)
    assert code == 1
    assert [o["id"] for o in out] == [1] and out[0]["topics"] == ["tariffs"]
    assert [(e["error"], e["line"]) for e in err] == [("bad_record", n) for n in (1, 3, 4, 5, 6)]
    assert err[3]["id"] == 2 and "title" in err[3]["message"]


def test_tag_with_a_custom_taxonomy_and_a_broken_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = tmp_path / "topics.yaml"
    custom.write_text('version: "c.1"\ntopics:\n  - {id: weather, label: Weather, terms: [storm]}\n', "utf-8")
    code, out, _ = run_tag(
        monkeypatch, capsys, '{"id": 1, "title": "Storms ahead"}\n', "--taxonomy", str(custom)
    )
    assert code == 0 and out[0]["topics"] == ["weather"] and out[0]["taxonomy_version"] == "c.1"

    custom.write_text('version: "c.2"\ntopics:\n  - {id: weather, label: Weather, terms: []}\n', "utf-8")
    code, out, err = run_tag(monkeypatch, capsys, '{"id": 1, "title": "x"}\n', "--taxonomy", str(custom))
    assert (code, out) == (2, [])
    assert err[0]["error"] == "config" and err[0]["topic"] == "weather" and err[0]["field"] == "terms"


def test_eval_tags_prints_a_table_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval-tags", str(EVAL_SET)]) == 0
    table = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split()
        for line in table.splitlines()
        if line and line.split()[0] in {*Taxonomy.load().topic_ids, "micro"}
    }
    assert set(rows) == {*Taxonomy.load().topic_ids, "micro"}
    assert "precision" in table and "recall" in table and "f1" in table and "support" in table
    assert "misclassified" not in table

    assert main(["eval-tags", str(EVAL_SET), "--errors"]) == 0
    assert "misclassified items" in capsys.readouterr().out


def test_eval_tags_on_a_missing_file_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval-tags", str(tmp_path / "none.jsonl")]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "unreadable"


def test_eval_tags_scores_only_the_topics_a_set_labels_and_explains_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval-tags", str(TRAIN_A)]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[3:] if line[:1].isalpha()]
    assert rows == ["rare_earths", "tariffs", "tiktok", "micro"]  # the three topics tags/ label

    labeled = tmp_path / "set.jsonl"
    items = [
        {
            "id": "fp",
            "title": "Tariff rises for homes",  # ("water tariff" itself is blocked: no sense verdict)
            "body": "The utility said the tariff for homes rises 6% in April as water and power bills climb.",
            "topics": ["tariffs"],
        },
        {"id": "fn", "title": "Storm", "body": "Snow closes schools.", "topics": ["tariffs"]},
    ]
    labeled.write_text("".join(json.dumps(i) + "\n" for i in items), "utf-8")
    assert main(["eval-tags", str(labeled), "--errors", "--topics", "tariffs"]) == 0
    out = capsys.readouterr().out
    assert "2 misclassified items" in out
    assert "tariffs: sense p=" in out and "class:utility" in out  # the model's verdict and its reasons
    assert "tariffs: no term or candidate of the topic in the story" in out


def test_train_tags_writes_a_deterministic_model_and_cross_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a fixed threshold skips the cross-validation (the committed artifact's test covers training with it)
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["train-tags", "--threshold", "0.5", "--out", str(first)]) == 0
    assert "sense model" in capsys.readouterr().out
    assert main(["train-tags", "--threshold", "0.5", "--out", str(second)]) == 0
    assert first.read_bytes() == second.read_bytes()
    assert main(["eval-tags", str(TRAIN_A), "--model", str(first)]) == 0
    assert "+sense." in capsys.readouterr().out

    assert (
        main(["train-tags", str(TRAIN_A), str(TRAIN_A.with_name("train_b.jsonl")), "--cross-validate"]) == 0
    )
    table = capsys.readouterr().out
    assert "leave-one-writer-out" in table and "train_a.jsonl" in table and "pooled" in table
    rows = [line.split()[0] for line in table.splitlines()[3:]]
    assert set(rows) == {"rare_earths", "tariffs", "tiktok", "leads", "thresholds:"}  # a full and a leads row
    assert rows.count("leads") == 3 and rows[-1] == "thresholds:"

    assert main(["train-tags", str(tmp_path / "missing.jsonl")]) == 2
    assert json.loads(capsys.readouterr().err)["error"] == "unreadable"


def test_a_line_nested_too_deep_or_with_a_huge_number_is_reported_and_the_rest_goes_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        json.dumps({"id": "a", "title": "TikTok ban upheld"}),
        "[" * 100_000 + "]" * 100_000,
        '{"id": ' + "9" * 5_000 + ', "title": "Tariffs"}',
        '{"id": "d", "title": "Tariffs", "x": ' + '{"k": ' * 100_000 + "1" + "}" * 100_000 + "}",
        json.dumps({"id": "e", "title": "Rare earth magnets"}),
    ]
    code, out, err = run_tag(monkeypatch, capsys, "\n".join(lines) + "\n")
    assert code == 1 and [o["id"] for o in out] == ["a", "e"]
    assert [(e["line"], e["error"]) for e in err] == [(2, "bad_record"), (3, "bad_record"), (4, "bad_record")]
    assert "too deep" in err[0]["message"] and "digits" in err[1]["message"]
