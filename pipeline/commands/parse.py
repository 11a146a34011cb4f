"""`wirefeed parse PATH_OR_URL...`: stories as JSON lines (stdout or --out) or one Parquet file."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pipeline.config import Settings
from pipeline.errors import BadInputError, FatalError, WirefeedError
from pipeline.parsing.budget import parse_budget
from pipeline.parsing.stories import StoryTagger, load_default_tagger, stories_from_bytes
from pipeline.redact import redact_url
from pipeline.schema import Story

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _files_under(directory: Path) -> Iterator[Path]:
    """Regular files below `directory`, sorted, skipping hidden files and directories."""
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(directory).parts):
            yield path


def _expand(inputs: list[str]) -> list[str]:
    expanded: list[str] = []
    for item in inputs:
        path = Path(item)
        if item != "-" and not _is_url(item) and path.is_dir():
            expanded.extend(str(p) for p in _files_under(path))
        else:
            expanded.append(item)
    return expanded


def _read(item: str, settings: Settings) -> tuple[bytes, datetime, str | None, str | None]:
    """(bytes, fetched_at, feed_url, content_type) of one input."""
    if item == "-":
        return sys.stdin.buffer.read(), datetime.now(UTC), None, None
    if _is_url(item):
        from pipeline.sources.fetch import fetch  # lazy: only URL inputs need fetching

        result = fetch(item, settings=settings)
        return result.body, result.fetched_at, result.final_url, result.content_type
    try:
        return Path(item).read_bytes(), datetime.now(UTC), None, None
    except OSError as exc:
        raise BadInputError("unreadable", f"cannot read {item}: {exc.strerror}") from None


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def story_json(story: Story) -> str:
    return json.dumps(story, ensure_ascii=False, default=_json_default)


def _reject(item: str, error: WirefeedError) -> None:
    line = {"input": redact_url(item), "error": error.kind, "message": error.message}
    print(json.dumps(line, ensure_ascii=False), file=sys.stderr, flush=True)


def _exists(path: str) -> bool:
    try:
        return Path(path).exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _unwritable(path: str) -> str | None:
    """Why a file cannot be written at `path` (checked before any input is read), or None."""
    try:
        target = Path(path)
        if target.is_dir():
            return "is a directory"
        if not target.parent.is_dir():
            return "its directory does not exist"
    except (OSError, ValueError) as exc:
        return str(exc)
    return None


def _shown(path: str) -> str:
    return repr(path) if len(path) <= 200 else f"{path[:200]!r}... ({len(path)} characters)"


def _usage_error(message: str) -> int:
    print(f"wirefeed parse: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    inputs: list[str] = list(args.inputs)
    if args.format == "parquet" and not args.out:
        return _usage_error("--format parquet needs --out FILE")
    missing = [i for i in inputs if i != "-" and not _is_url(i) and not _exists(i)]
    if missing:
        return _usage_error(f"no such file or directory: {', '.join(_shown(i) for i in missing)}")
    if args.out and (problem := _unwritable(args.out)):
        return _usage_error(f"--out {_shown(args.out)}: {problem}")
    if inputs.count("-") > 1:
        return _usage_error("stdin (-) can be read only once")
    try:
        settings = Settings.load()
    except WirefeedError as exc:
        return _usage_error(exc.message)
    try:
        tagger: StoryTagger | None = None if args.no_tag else load_default_tagger()
    except (ImportError, FatalError) as exc:
        return _usage_error(f"topic tagging is unavailable ({exc}); use --no-tag")

    collected: list[Story] = []
    rejected = 0
    with contextlib.ExitStack() as stack:
        out: IO[str] = sys.stdout
        if args.out and args.format == "jsonl":
            out = stack.enter_context(open(args.out, "w", encoding="utf-8"))
        for item in _expand(inputs):
            try:
                data, fetched_at, feed_url, content_type = _read(item, settings)
                with parse_budget(settings.parse_budget, redact_url(item)):
                    batch = stories_from_bytes(
                        data,
                        item,
                        fetched_at=fetched_at,
                        source=args.source,
                        feed_url=feed_url,
                        content_type=content_type,
                        tagger=tagger,
                    )
            except WirefeedError as exc:
                rejected += 1
                _reject(item, exc)
                continue
            if args.format == "parquet":
                collected.extend(batch.stories)
                continue
            for story in batch.stories:
                out.write(story_json(story) + "\n")
            out.flush()
    if args.format == "parquet":
        _write_parquet(collected, Path(args.out))
    return EXIT_REJECTED if rejected else EXIT_OK


def _write_parquet(stories: list[Story], path: Path) -> None:
    from pipeline.lake.parquet import parquet_bytes, to_table  # lazy: pyarrow only for parquet output

    path.write_bytes(parquet_bytes(to_table(stories)))
