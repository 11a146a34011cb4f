"""The feed list: `config/feeds.yaml`, validated at start with errors that name the line and the field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pipeline.errors import ConfigError
from pipeline.redact import redact_url

FEED_FIELDS = ("id", "url", "source", "language", "enabled", "local")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
# libyaml's loader when PyYAML was built with it: composes a 200-feed file in 7 ms instead of 100
_COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class FeedSpec:
    id: str
    url: str  # http(s) URL, or an absolute file path when `local`
    source: str
    language: str | None = None
    enabled: bool = True
    local: bool = False


def load_feeds(path: str | Path, *, include_disabled: bool = False) -> list[FeedSpec]:
    """Read and validate a feeds file; returns the enabled feeds (all of them with include_disabled)."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read feeds file {path}: {exc.strerror or exc}", path=str(path)) from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise _error(path, line, "feeds", f"not UTF-8 (byte {exc.start}: {exc.reason})") from None
    feeds = parse_feeds(text, path)
    return feeds if include_disabled else [f for f in feeds if f.enabled]


def parse_feeds(text: str, path: Path) -> list[FeedSpec]:
    """Validate the YAML text of a feeds file; `path` names it in errors and anchors local paths."""
    try:
        root = yaml.compose(text, Loader=_COMPOSER)
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own limit; the Python loader recurses instead
            raise ConfigError(f"{path}: YAML nests too deep", path=str(path)) from None
        raise ConfigError(f"{path}: not valid YAML: {exc}", path=str(path)) from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nests too deep", path=str(path)) from None
    if root is None:
        raise ConfigError(f"{path}: no feeds", path=str(path))
    items = _feed_list_node(root, path)
    feeds: list[FeedSpec] = []
    first_line: dict[str, int] = {}
    for item in items.value:
        feed = _feed(item, path)
        line = _line(item)
        if feed.id in first_line:
            raise _error(
                path, line, "id", f"duplicate feed id {feed.id!r} (first at line {first_line[feed.id]})"
            )
        first_line[feed.id] = line
        feeds.append(feed)
    return feeds


def _feed_list_node(root: yaml.Node, path: Path) -> yaml.SequenceNode:
    """Accept a top-level list, or a mapping with a `feeds:` list."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "feeds":
                root = value
                break
        else:
            raise _error(path, _line(root), "feeds", "expected a list of feeds or a mapping with 'feeds:'")
    if not isinstance(root, yaml.SequenceNode):
        raise _error(path, _line(root), "feeds", "expected a list of feeds")
    return root


def _feed(node: yaml.Node, path: Path) -> FeedSpec:
    if not isinstance(node, yaml.MappingNode):
        raise _error(path, _line(node), "feed", "each feed must be a mapping")
    values: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if key not in FEED_FIELDS:
            raise _error(
                path, _line(key_node), str(key), f"unknown field (allowed: {', '.join(FEED_FIELDS)})"
            )
        if key in values:
            raise _error(path, _line(key_node), key, "field given twice")
        values[key] = _scalar(value_node, path, key)
        lines[key] = _line(value_node)
    line = _line(node)

    def need_str(name: str, required: bool) -> str | None:
        value = values.get(name)
        if value is None:
            if required:
                raise _error(path, line, name, "missing required field")
            return None
        if not isinstance(value, str):
            raise _error(path, lines[name], name, f"must be a string, not {value!r} (quote it)")
        if not value.strip():
            raise _error(path, lines[name], name, "must not be empty")
        return value.strip()

    def need_bool(name: str, default: bool) -> bool:
        value = values.get(name, default)
        if not isinstance(value, bool):
            raise _error(path, lines[name], name, "must be true or false")
        return value

    feed_id = need_str("id", True) or ""
    if not _SAFE_ID.fullmatch(feed_id):
        raise _error(path, lines["id"], "id", f"{feed_id!r} is not file-name safe ([A-Za-z0-9._-], max 80)")
    url = need_str("url", True) or ""
    local = need_bool("local", False)
    language = need_str("language", False)
    if language is not None and not _LANGUAGE.fullmatch(language):
        raise _error(path, lines["language"], "language", f"{language!r} is not a BCP 47 tag")
    return FeedSpec(
        id=feed_id,
        url=_local_path(url, path, lines["url"]) if local else _http_url(url, path, lines["url"]),
        source=need_str("source", False) or feed_id,
        language=language.lower() if language else None,
        enabled=need_bool("enabled", True),
        local=local,
    )


def _scalar(node: yaml.Node, path: Path, field: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise _error(path, _line(node), field, "must be a single value")
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    except yaml.YAMLError as exc:
        raise _error(path, _line(node), field, f"bad value: {exc}") from None
    finally:
        loader.dispose()


def _http_url(url: str, path: Path, line: int) -> str:
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port outside 0..65535
    except ValueError as exc:  # a bad port, a broken IPv6 literal
        raise _error(path, line, "url", f"{shown!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _error(path, line, "url", f"{shown!r} must be an http(s) URL (or set local: true for a file)")
    return url


def _local_path(url: str, path: Path, line: int) -> str:
    """A local feed is a file path relative to the feeds file (or absolute); it must exist."""
    if "://" in url:
        raise _error(path, line, "url", f"{url!r}: a local feed's url is a file path, not a URL")
    target = (path.parent / url).resolve()
    if not target.is_file():
        raise _error(path, line, "url", f"local file {str(target)!r} does not exist")
    return str(target)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _error(path: Path, line: int, field: str, message: str) -> ConfigError:
    return ConfigError(f"{path}:{line}: field '{field}': {message}", path=str(path), line=line, field=field)
