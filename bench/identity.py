"""Output identity check for speed work: a change that only makes wirefeed faster must land the same data.

    .venv/bin/python -m bench.identity stories --make REF.pkl     # before the change (on the old tree)
    .venv/bin/python -m bench.identity stories --compare REF.pkl  # after it: every story field, every input
    .venv/bin/python -m bench.identity lake --make REF.pkl        # backfills (JSONL, snapshots), 2 workers
    .venv/bin/python -m bench.identity lake --compare REF.pkl     # every landed row, every column

`stories` runs parse -> normalize -> tag over feedparser's test corpus (when ../shared is present), the seed
story, generated quirky RSS/Atom feeds, generated news feeds and the hostile-input cases, with a fixed fetch
time. `lake` backfills generated archives (with odd records mixed in) into temporary local lakes.
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench import generate
from bench.hostile import CASES

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
FETCHED_AT = datetime(2025, 9, 3, 12, tzinfo=UTC)


def story_inputs() -> Iterator[tuple[str, bytes, dict[str, Any]]]:
    corpus = SHARED / "corpora" / "feedparser-tests"
    if corpus.is_dir():
        for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
            yield str(path.relative_to(corpus)), path.read_bytes(), {}
    for path in sorted((SHARED / "seeds").glob("*")) if (SHARED / "seeds").is_dir() else []:
        yield f"seed/{path.name}", path.read_bytes(), {}
    yield from generate.quirky_rss_feeds(5, 300)
    yield from generate.quirky_atom_feeds(6, 300)
    w = generate.Writer(3)
    for i in range(50):
        yield f"news-{i}.xml", generate.rss_feed(w, i, 20, date(2025, 9, 1 + i % 4)), {}
    for name, make in CASES.items():
        for n in (50, 3000):
            yield f"hostile {name} {n}", make(n), {}


def story_outcomes() -> dict[str, Any]:
    from pipeline.errors import WirefeedError
    from pipeline.parsing.stories import load_default_tagger, stories_from_bytes

    tagger = load_default_tagger()
    out: dict[str, Any] = {}
    for origin, data, kwargs in story_inputs():
        try:
            batch = stories_from_bytes(data, origin, fetched_at=FETCHED_AT, tagger=tagger, **kwargs)
            out[origin] = ([dict(s) for s in batch.stories], batch.problems, batch.rejected_entries)
        except WirefeedError as exc:
            out[origin] = ("error", exc.kind, exc.message)
    return out


def _odd_records() -> list[dict[str, Any]]:
    """Records a real archive holds besides clean ones: markup, bad dates, missing fields, repeats."""
    odd: list[dict[str, Any]] = []
    for i in range(200):
        record: dict[str, Any] = {
            "uid": f"odd{i % 150}",  # some ids repeat with other content
            "headline": ["<b>Tariffs</b> &amp; rare earths", "", "TikTok ban talks", "  spaced   out  "][
                i % 4
            ],
            "story_url": [f"https://Wire.Example.com:443/x/{i}?utm_source=a#f", "", None, "not a url"][i % 4],
            "text": [
                "<p>Body one.</p><p>Two <script>x()</script></p>",
                "plain\n\n\nbody",
                "",
                "tariff " * 50,
            ][(i // 4) % 4],
            "byline": [["A"], [], None, ["A", "A", "B"]][i % 4],
            "first_published": [
                "2025-09-01T25:00:00Z",
                "2025-09-02",
                "yesterday",
                None,
                "2025-09-03T10:00:00+05:00",
            ][i % 5],
            "section": [["World"], None][i % 2],
            "lang": ["EN-us", None, ""][i % 3],
        }
        odd.append(record)
    return odd


def _write_archives(root: Path) -> None:
    jsonl = root / "jsonl"
    generate.jsonl_archive(jsonl, stories=6000, days=3)
    with (jsonl / "wire-2025-09-02.jsonl").open("a", encoding="utf-8") as out:
        for record in _odd_records():
            out.write(json.dumps(record) + "\n")
        out.write("{not json\n[1, 2]\n\n")
    generate.snapshot_archive(root / "snap", files=50, items=50, days=1)


def _landed_rows(lake: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in sorted(lake.rglob("*.parquet")):
        if "_state" in path.parts or "raw" in path.parts:
            continue
        rows += pq.read_table(path).to_pylist()  # (no column differs between runs of the same code)
    return sorted(rows, key=lambda r: (r["story_id"], r["content_hash"], repr(r)))


def lake_outcomes(workers: int = 2) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="wirefeed-identity-") as tmp:
        # A fixed archive path: `origin` holds it.
        root = Path(tempfile.gettempdir()) / "wirefeed-identity-archives"
        if not root.exists():  # written once per machine, renamed into place (helpers may race)
            part = Path(tempfile.mkdtemp(prefix="wirefeed-identity-part-"))
            _write_archives(part)
            try:
                part.rename(root)
            except OSError:
                shutil.rmtree(part)
        for name, archive, args in _archive_args(root):
            lake = Path(tmp) / name
            cmd = [
                sys.executable,
                "-m",
                "pipeline.cli",
                "backfill",
                "--archive",
                str(archive),
                "--lake",
                str(lake),
            ]
            done = subprocess.run([*cmd, *args, "--workers", str(workers)], capture_output=True, text=True)
            out[name] = {"exit": done.returncode, "rows": _landed_rows(lake)}
    return out


def _archive_args(root: Path) -> list[tuple[str, Path, list[str]]]:
    mapping = root / "jsonl-mapping.yaml"
    return [
        (
            "jsonl",
            root / "jsonl",
            ["--from", "2025-09-01", "--to", "2025-09-03", "--layout", "jsonl", "--mapping", str(mapping)],
        ),
        ("snap", root / "snap", ["--from", "2025-09-01", "--to", "2025-09-01"]),
    ]


def _describe(name: str, ours: Any, ref: Any) -> str:
    stories = (
        isinstance(ours, tuple) and isinstance(ref, tuple) and ours and ref and isinstance(ours[0], list)
    )
    if stories and isinstance(ref[0], list) and len(ours[0]) == len(ref[0]):
        for i, (a, b) in enumerate(zip(ours[0], ref[0], strict=True)):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    return f"{name} story {i} {key}: now {a.get(key)!r:.150} != ref {b.get(key)!r:.150}"
    if isinstance(ours, dict) and isinstance(ref, dict) and "rows" in ours:
        if ours["exit"] != ref["exit"]:
            return f"{name}: exit {ours['exit']} != ref {ref['exit']}"
        if len(ours["rows"]) != len(ref["rows"]):
            return f"{name}: {len(ours['rows'])} rows != ref {len(ref['rows'])}"
        for a, b in zip(ours["rows"], ref["rows"], strict=True):
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    return f"{name} {a['story_id']} {key}: now {a.get(key)!r:.150} != ref {b.get(key)!r:.150}"
    return f"{name}: now {ours!r:.200} != ref {ref!r:.200}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.identity", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("stories", "lake"))
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--make", type=Path, metavar="REF")
    group.add_argument("--compare", type=Path, metavar="REF")
    args = parser.parse_args(argv)
    now = story_outcomes() if args.what == "stories" else lake_outcomes()
    if args.make:
        args.make.write_bytes(pickle.dumps(now))
        sizes = {k: len(v["rows"]) for k, v in now.items()} if args.what == "lake" else len(now)
        print(f"reference written: {sizes}")
        return 0
    ref = pickle.loads(args.compare.read_bytes())
    names = sorted(set(now) | set(ref))
    differ = [n for n in names if now.get(n) != ref.get(n)]
    for name in differ[:10]:
        print(_describe(name, now.get(name), ref.get(name)))
    print(f"{len(names)} compared, {len(differ)} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
