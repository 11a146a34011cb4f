"""Read one UTC day of a historical archive (a local directory or an s3:// prefix) as a stream of inputs.

Layouts (detected, or forced with `layout=`):
- `raw`: the lake's raw zone (`raw/<sha[:2]>/<sha256>.gz` + `.json` metadata); a body belongs to the day its
  metadata `fetched_at` falls on.
- `snapshots`: feed files (`.xml .rss .atom .json`, optionally `.gz`) dated by a `YYYY/MM/DD/` path.
- `jsonl`: JSON Lines exports (`.jsonl[.gz]`) dated by path or by a `YYYY-MM-DD` file name, else per record by
  the field mapped to `published`; records become `RawEntry`s through a field mapping.
- `wire`: plain-text wire stories (`.txt`, seed format), one per file, dated by path or file name.
Detection: an archive holding raw-zone metadata is `raw`; otherwise each file's layout follows its extension.
Nothing is read before it is yielded; a bad input is yielded with `error` set instead of stopping the day:
one bad file costs that file, with its reason (too_large from the listed size before any byte is read,
outside_root for a symlink leading out of a local archive, bad_key for a name such as `back\\slash.txt`,
malformed for unreadable or too deeply nested JSON). Control characters in a file name (an escape sequence)
are percent-encoded in the item's `origin`, which ends up in stories, manifests and terminals; `key` stays
the real name.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import operator
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Final, TypeVar

import msgspec

from pipeline.config import Settings, read_yaml_file
from pipeline.errors import BadInputError, ConfigError
from pipeline.lake.store import BadKeyError, Lake, LocalFile, ObjectInfo, open_lake
from pipeline.parsing.dates import parse_date
from pipeline.parsing.parse import (
    FIELD_CAPS,
    MAX_NAMES,
    NAME_CAP,
    RawEntry,
    cap_entry,
    lenient_json,
    new_entry,
    within_caps,
)
from pipeline.redact import redact_url
from pipeline.sources.feeds import load_feeds

log = logging.getLogger(__name__)
_T = TypeVar("_T")

LAYOUTS = ("raw", "snapshots", "jsonl", "wire")
_MAX_META_BYTES = 1 << 20  # one raw-zone metadata file
MAX_JSONL_BYTES = 1 << 30  # decompressed cap for one JSON Lines file (feed/wire files use max_body_bytes)
JSONL_READ_BUFFER: Final = 1 << 20  # a local JSON Lines file read as its records are consumed: this at a time
_GZIP_SLACK = 1.01  # gzip of incompressible bytes is a little larger than they are
_CONTROL_CHARS = re.compile("[\x00-\x1f\x7f-\x9f]")
_DECODE_JSON = msgspec.json.Decoder().decode

_RAW_META = re.compile(r"(?:^|/)([0-9a-f]{2})/(\1[0-9a-f]{62})\.json$")
_PATH_DATE = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/")
_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_HTML = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*|/[a-zA-Z][a-zA-Z0-9]*)[^<>]*>")
_EXTENSIONS = {
    ".xml": "snapshots",
    ".rss": "snapshots",
    ".atom": "snapshots",
    ".json": "snapshots",
    ".jsonl": "jsonl",
    ".txt": "wire",
}
_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".json": "application/feed+json",
    ".txt": "text/plain",
}

# Mapping targets: RawEntry fields, plus story-field spellings for the same thing.
_ALIASES = {
    "url": "link",
    "published_at": "published",
    "updated_at": "updated",
    "author": "authors",
    "id": "guid",
}
# The mapping targets: RawEntry's text fields, in the order _entry_fields takes them
_ENTRY_ORDER: Final = (
    "source",
    "guid",
    "link",
    "title",
    "summary",
    "body",
    "authors",
    "language",
    "categories",
    "published",
    "updated",
    "attribution",
)
_TARGETS = set(_ENTRY_ORDER)
DEFAULT_MAPPING: dict[str, str] = {
    **{name: name for name in _TARGETS},
    **_ALIASES,
    "headline": "title",
    "text": "body",
    "content": "body",
    "description": "summary",
    "date": "published",
    "pubDate": "published",
}


@dataclass(frozen=True)
class ArchiveItem:
    """One input of the day: feed/wire bytes (`data`) or mapped JSON Lines records (`entries`)."""

    origin: str  # URI of the archive object
    key: str  # key relative to the archive root
    layout: str
    fetched_at: datetime
    data: bytes | None = None
    entries: tuple[RawEntry, ...] = ()
    records: JsonlRecords | None = None  # JSON Lines read as it is consumed (iter_archive_day's stream)
    source: str | None = None
    feed_url: str | None = None
    content_type: str | None = None
    error: BadInputError | None = None
    problems: tuple[str, ...] = ()  # per-record problems (JSON Lines)
    rejected: int = 0  # records dropped while reading (JSON Lines)


@dataclass(frozen=True)
class Planned:
    """An archive object chosen as an input, before it is read."""

    key: str
    layout: str
    by_record: bool = False  # JSON Lines without a date in its key: records are placed by their own date
    meta: Mapping[str, Any] | None = None  # raw zone: the body's metadata
    error: str | None = None  # raw zone: why the body cannot be used
    size: int | None = None  # bytes, from the listing: a file over the cap is refused before it is read


def iter_archive_day(
    uri: str,
    day: date,
    layout: str | None = None,
    mapping: Mapping[str, str] | str | None = None,
    *,
    settings: Settings | None = None,
    planned: Iterable[Planned] | None = None,
    stream: bool = False,
) -> Iterator[ArchiveItem]:
    """Yield the day's inputs one at a time (each object is fetched only when its item is produced).
    `planned`: the day's inputs from plan_archive(), so a multi-day run lists the archive only once.
    `stream`: a JSON Lines file dated by its key comes as `records` to read (JsonlRecords), not `entries`:
    its problems, rejections and a `no_entries` verdict are known only once they are read."""
    check_layout(layout)
    settings = settings or Settings.load()
    lake = open_lake(uri, settings)
    fields = load_mapping(mapping)
    if planned is None:
        chosen = select_inputs(lake, list_archive(lake), layout)
        planned = (p for d, p in chosen if d is None or d == day)
    sources: dict[str, str] | None = None
    for plan in planned:
        if plan.layout == "raw":
            sources = _feed_sources(settings) if sources is None else sources
            yield _raw_item(lake, plan, day, settings.max_body_bytes, sources)
        elif plan.layout == "jsonl":
            item = _jsonl_item(lake, plan, day, fields, stream)
            if item is not None:
                yield item
        else:
            yield _bytes_item(lake, plan, day, settings.max_body_bytes)


def plan_archive(
    uri: str, days: Iterable[date], layout: str | None = None, *, settings: Settings | None = None
) -> dict[date, list[Planned]]:
    """Each day's inputs, from one listing (and one read of each raw-zone metadata file) for all days."""
    check_layout(layout)
    lake = open_lake(uri, settings or Settings.load())
    plan: dict[date, list[Planned]] = {d: [] for d in days}
    for day, item in select_inputs(lake, list_archive(lake), layout):
        targets = list(plan) if day is None else [day] if day in plan else []
        for target in targets:
            plan[target].append(item)
    return plan


def select_inputs(
    lake: Lake, objects: list[ObjectInfo], layout: str | None
) -> Iterator[tuple[date | None, Planned]]:
    """Every input of the archive with the day it belongs to (None: any day; read to find out)."""
    if layout == "raw" or (layout is None and any(_RAW_META.search(o.key) for o in objects)):
        yield from _select_raw(lake, objects)
        return
    for obj in objects:
        kind = layout or _layout_of(obj.key)
        if kind is None or kind == "raw" or _hidden(obj.key):
            continue
        dated = key_date(obj.key)
        if kind == "jsonl":
            yield dated, Planned(obj.key, kind, by_record=dated is None, size=obj.size)
        elif dated is not None:
            yield dated, Planned(obj.key, kind, size=obj.size)


def check_layout(layout: str | None) -> None:
    if layout is not None and layout not in LAYOUTS:
        raise ConfigError(f"unknown archive layout {layout!r}", field="layout", allowed=list(LAYOUTS))


def list_archive(lake: Lake) -> list[ObjectInfo]:
    """Every object of the archive; ConfigError when there is none (a wrong URI must not land empty days)."""
    objects = lake.list("")
    if not objects:
        raise ConfigError(f"archive {lake.uri()} is empty or does not exist", archive=lake.uri())
    return objects


def detect_layout(uri: str, settings: Settings | None = None) -> str | None:
    """The archive's layout: 'raw', the one layout all its files share, or None (mixed or unknown)."""
    objects = list_archive(open_lake(uri, settings or Settings.load()))
    if any(_RAW_META.search(o.key) for o in objects):
        return "raw"
    kinds = {_layout_of(o.key) for o in objects if not _hidden(o.key)} - {None}
    return kinds.pop() if len(kinds) == 1 else None


def key_date(key: str) -> date | None:
    """The date of a `.../YYYY/MM/DD/...` path, else of a `YYYY-MM-DD` in the file name."""
    for match in (_PATH_DATE.search(key), _NAME_DATE.search(key.rsplit("/", 1)[-1])):
        if match:
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                continue
    return None


def load_mapping(mapping: Mapping[str, str] | str | None) -> dict[str, str]:
    """Archive field -> RawEntry field, from a dict or a YAML file (story spellings such as url work)."""
    if mapping is None:
        return dict(DEFAULT_MAPPING)
    doc: Any = read_yaml_file(Path(mapping), "mapping") if isinstance(mapping, str) else mapping
    if not isinstance(doc, Mapping) or not doc:
        raise ConfigError(
            "mapping must be a non-empty mapping of archive field -> story field", value=str(doc)
        )
    fields: dict[str, str] = {}
    for source, target in doc.items():
        name = _ALIASES.get(str(target), str(target))
        if name not in _TARGETS:
            raise ConfigError(f"mapping target {target!r} is not a story field", field=str(source))
        fields[str(source)] = name
    return fields


def _hidden(key: str) -> bool:
    return any(part.startswith((".", "_")) for part in key.split("/"))


def _layout_of(key: str) -> str | None:
    if _RAW_META.search(key) or re.search(r"(?:^|/)[0-9a-f]{2}/[0-9a-f]{64}\.gz$", key):
        return "raw"
    return _EXTENSIONS.get(_suffix(key))


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1].lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return Path(name).suffix


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _origin(lake: Lake, key: str) -> str:
    """The object's URI for records and messages: control characters (an escape sequence in a file name)
    percent-encoded, so no terminal or log interprets them."""
    return _CONTROL_CHARS.sub(lambda m: f"%{ord(m.group(0)):02X}", lake.uri(key))


def _read(lake: Lake, key: str, limit: int, size: int | None = None) -> bytes:
    """The object's bytes, gunzipped when named .gz; BadInputError when too large (judged from the listed
    size first, before reading), corrupt, or not readable as an archive file (bad name, symlink out)."""
    if size is not None and size > limit * (_GZIP_SLACK if key.endswith(".gz") else 1) + 1024:
        raise BadInputError("too_large", f"{key}: {size} bytes, more than {limit}", key=key, limit=limit)
    data = _from_lake(lake.get, key)
    if key.endswith(".gz"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(data, limit + 1)
        except zlib.error as exc:
            raise BadInputError("malformed", f"{key}: not valid gzip ({exc})", key=key) from None
        if not inflater.eof and not inflater.unconsumed_tail and len(out) <= limit:
            raise BadInputError("malformed", f"{key}: truncated gzip", key=key)
        data = out
    if len(data) > limit:
        raise _too_large(key, limit)
    return data


def _from_lake(read: Callable[[str], _T], key: str) -> _T:
    """read(key), a lake's get or local_file; a key the lake refuses to read as an archive file (bad name,
    symlink out of its root) is the input's BadInputError of the same kind."""
    try:
        return read(key)
    except BadKeyError as exc:
        raise BadInputError(exc.kind, exc.message, key=key) from None


def _too_large(key: str, limit: int) -> BadInputError:
    return BadInputError("too_large", f"{key}: more than {limit} bytes", key=key, limit=limit)


def _file_lines(file: LocalFile) -> Iterator[bytes]:
    """The lines of a local file's first `file.size` bytes (its size when it was looked at), as reading
    them whole and splitting after each newline gives them; one buffer of JSONL_READ_BUFFER at a time."""
    remaining = file.size
    with open(file.path, "rb", buffering=JSONL_READ_BUFFER) as handle:
        while remaining > 0 and (line := handle.readline(remaining)):
            remaining -= len(line)
            yield line


def _bytes_item(lake: Lake, plan: Planned, day: date, limit: int) -> ArchiveItem:
    base = ArchiveItem(_origin(lake, plan.key), plan.key, plan.layout, _day_start(day))
    try:
        data = _read(lake, plan.key, limit, plan.size)
    except BadInputError as exc:
        return _with(base, error=exc)
    return _with(base, data=data, content_type=_CONTENT_TYPES.get(_suffix(plan.key)))


def _with(item: ArchiveItem, **changes: Any) -> ArchiveItem:
    return ArchiveItem(**{**item.__dict__, **changes})


# --- raw zone -------------------------------------------------------------------------------------------


def _feed_sources(settings: Settings) -> dict[str, str]:
    """feed id -> source name from the feeds file, so a replay names sources as the daily run did."""
    if not Path(settings.feeds_file).is_file():
        return {}
    try:
        return {f.id: f.source for f in load_feeds(settings.feeds_file, include_disabled=True)}
    except ConfigError as exc:
        log.warning("raw replay without feed sources: %s", exc.message)
        return {}


def _select_raw(lake: Lake, objects: list[ObjectInfo]) -> Iterator[tuple[date | None, Planned]]:
    sizes = {o.key: o.size for o in objects}
    for obj in objects:
        if not _RAW_META.search(obj.key):
            continue
        body_key = obj.key[: -len(".json")] + ".gz"
        try:
            meta = json.loads(_read(lake, obj.key, _MAX_META_BYTES, obj.size))
            fetched = parse_date(meta.get("fetched_at")) if isinstance(meta, dict) else None
        except (ValueError, UnicodeDecodeError, RecursionError, BadInputError):
            meta, fetched = None, None
        if not isinstance(meta, dict) or fetched is None:
            yield None, Planned(body_key, "raw", error=f"{obj.key}: unreadable metadata")
        elif body_key in sizes:
            yield fetched.date(), Planned(body_key, "raw", meta=meta, size=sizes[body_key])
        elif meta.get("status") not in (304, "not_modified"):  # nothing is stored for a 304
            yield fetched.date(), Planned(body_key, "raw", meta=meta, error=f"{body_key}: body missing")


def _raw_item(lake: Lake, plan: Planned, day: date, limit: int, sources: Mapping[str, str]) -> ArchiveItem:
    meta = plan.meta or {}
    fetched = parse_date(meta.get("fetched_at")) or _day_start(day)
    base = ArchiveItem(_origin(lake, plan.key), plan.key, "raw", fetched)
    try:
        if plan.error:
            raise BadInputError("malformed" if plan.meta is None else "missing", plan.error, key=plan.key)
        data = _read(lake, plan.key, limit, plan.size)
        if meta.get("sha256") and hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise BadInputError("corrupt", f"{plan.key}: body does not match its sha256", key=plan.key)
    except BadInputError as exc:
        return _with(base, error=exc)
    return _with(
        base,
        data=data,
        source=sources.get(str(meta.get("feed_id"))),
        feed_url=_meta_url(meta),
        content_type=meta.get("content_type"),
    )


def _meta_url(meta: Mapping[str, Any]) -> str | None:
    """The feed URL of raw metadata, redacted (lakes written before redaction existed may hold secrets)."""
    url = meta.get("final_url") or meta.get("url")
    return redact_url(url) if isinstance(url, str) else None


# --- JSON Lines -----------------------------------------------------------------------------------------


class JsonlRecords:
    """A JSON Lines input's records, read a batch of lines at a time: `lines()` yields the non-blank lines
    with their numbers, `read(lines)` turns some of them into entries, tallying each line's problem and
    rejection as it is met (`problems`, `rejected`) and the entries read so far (`entries_read`). The backfill
    reads a file so, a few dozen records at a time, each record's text still in the CPU cache when it is
    normalized and tagged, and never holds the whole file's entries at once. `day`: keep only records
    dated on it (an undated export placed by record, see Planned.by_record). `data`: the file's bytes, or a
    local lake's file (LocalFile), read a line at a time as the records are consumed, up to the size it had
    when it was looked at: a worker never holds such a file whole (up to MAX_JSONL_BYTES), and never faults
    in a buffer as large."""

    def __init__(
        self,
        data: bytes | LocalFile,
        fields: dict[str, str],
        origin: str,
        source: str,
        day: date | None = None,
    ) -> None:
        checked = isinstance(data, bytes) and lines_checked(data)  # (a file's lines are checked one by one)
        self.data, self.fields, self.origin, self.source, self.day = data, fields, origin, source, day
        self._mapped = mapped_decoder(fields, checked=checked)
        self._plain = plain_entry_reader(fields, origin=origin, source=source, checked=checked)
        self.problems: list[str] = []
        self.rejected = 0
        self.entries_read = 0

    def lines(self) -> Iterator[tuple[int, bytes]]:
        data = self.data
        raw = iter(io.BytesIO(data)) if isinstance(data, bytes) else _file_lines(data)
        for lineno, line in enumerate(raw, start=1):
            if line and not line.isspace():  # (bytes.isspace: the ASCII whitespace bytes.strip() strips)
                yield lineno, line

    def read(self, lines: Iterable[tuple[int, bytes]]) -> list[RawEntry]:
        entries: list[RawEntry] = []
        for lineno, line in lines:
            entry = self._plain(line)
            if entry is None:  # the general reading
                entry = self._general(line, lineno)
                if entry is None:
                    continue
            if self.day is not None:
                when = parse_date(entry.published) or parse_date(entry.updated)
                if when is None:
                    self._reject(lineno, "no usable date to place the record on a day")
                    continue
                if when.date() != self.day:
                    continue
            entries.append(entry)
        self.entries_read += len(entries)
        return entries

    def _general(self, line: bytes, lineno: int) -> RawEntry | None:
        """The entry of one line, read as json.loads reads it, its cuts and rejection tallied."""
        values = self._mapped(line)
        if values is None:  # json.loads' values and errors
            try:
                record, notes = _line_json(line)
            except (ValueError, RecursionError) as exc:
                why = "nested too deep" if isinstance(exc, RecursionError) else "not valid JSON"
                self._reject(lineno, why)
                return None
            self.problems.extend(f"line {lineno}: {note}" for note in notes)
            if not isinstance(record, dict):
                self._reject(lineno, "not a JSON object")
                return None
            values = mapped_values(record, self.fields)
        try:
            entry, cuts = cap_entry(mapped_entry(values, origin=self.origin, source=self.source))
        except (ValueError, RecursionError) as exc:  # a value too deep or too long to turn into text
            self._reject(lineno, f"unusable value ({type(exc).__name__})")
            return None
        self.problems.extend(f"line {lineno}: {cut}" for cut in cuts)
        return entry

    def _reject(self, lineno: int, why: str) -> None:
        self.rejected += 1
        self.problems.append(f"line {lineno}: {why}")


def _jsonl_item(
    lake: Lake, plan: Planned, day: date, fields: dict[str, str], stream: bool = False
) -> ArchiveItem | None:
    """`stream`: a file dated by its key comes with its `records` unread (JsonlRecords; from a local lake's
    uncompressed file, read a line at a time); else (and for a file placed by record, which is an input of
    the day only if it has records for it) with its entries."""
    key, by_record = plan.key, plan.by_record
    origin = _origin(lake, key)
    base = ArchiveItem(origin, key, "jsonl", _day_start(day))
    default_source = _NAME_DATE.sub("", Path(_suffix_free(key)).name).strip("-_. ") or "archive"
    stream = stream and not by_record
    try:
        local = _from_lake(lake.local_file, key) if stream and not key.endswith(".gz") else None
        if local is not None and local.size > MAX_JSONL_BYTES:
            raise _too_large(key, MAX_JSONL_BYTES)
        data = local or _read(lake, key, MAX_JSONL_BYTES, plan.size)
    except BadInputError as exc:
        return _with(base, error=exc)
    records = JsonlRecords(data, fields, origin, default_source, day if by_record else None)
    if stream:
        return _with(base, records=records)
    entries = records.read(records.lines())
    if not entries and not records.rejected:
        if by_record:
            return None  # an undated export with nothing for this day is not one of the day's inputs
        return _with(base, error=no_entries(key))
    return _with(base, entries=tuple(entries), problems=tuple(records.problems), rejected=records.rejected)


def no_entries(key: str) -> BadInputError:
    return BadInputError("no_entries", f"{key}: no records", key=key)


def lines_checked(data: bytes) -> bool:
    """Whether every line of `data` is UTF-8 as _record_decoder checks a line, judged once for the file: a
    line is a slice of the file cut at a newline byte, which is never part of a longer UTF-8 sequence, so a
    file that decodes has only lines that decode."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return False
    return True


def mapped_decoder(
    fields: Mapping[str, str], *, checked: bool = False
) -> Callable[[bytes], dict[str, Any] | None]:
    """A reader of one line straight into mapped_values(json_value(line), fields), decoding only the mapped
    fields' values (msgspec, into a struct of them: no dict of the whole record). It answers None, leaving
    the line to json_value, wherever json.loads could judge the line differently: anything msgspec refuses
    (bad JSON, not an object, too deep, NaN, lone surrogates), and what msgspec does not check in the values
    it skips: UTF-8 (json.loads' own decoding is tried first) and integers longer than int() reads.
    `checked`: the lines are known to be UTF-8 (lines_checked of their file)."""
    targets = list(fields.values())
    decode = _record_decoder(fields, plain=False, checked=checked)

    def mapped(line: bytes) -> dict[str, Any] | None:
        values = decode(line)
        return None if values is None else _first_set(zip(values, targets, strict=True))

    return mapped


def _record_decoder(
    fields: Mapping[str, str], *, plain: bool, checked: bool = False
) -> Callable[[bytes], tuple[Any, ...] | None]:
    """line -> the values of the mapped fields, in mapping order (None for an absent field), or None where
    mapped_decoder leaves the line to json_value. `plain`: every value must have its target's _PLAIN_TYPES
    type, within the caps (else None too). `checked`: as mapped_decoder's."""
    as_tuple = msgspec.structs.astuple
    record = _line_decoder(fields, plain=plain, checked=checked)

    def values(line: bytes) -> tuple[Any, ...] | None:
        decoded = record(line)
        return None if decoded is None else as_tuple(decoded)

    return values


def _line_decoder(fields: Mapping[str, str], *, plain: bool, checked: bool) -> Callable[[bytes], Any]:
    """line -> the struct of the mapped fields (_struct_decoder), or None where mapped_decoder leaves the line
    to json_value; `checked`: the line's UTF-8 needs no check (lines_checked)."""
    decode = _struct_decoder(tuple(fields.items()), plain)
    max_digits = sys.get_int_max_str_digits() or 0

    def checked_record(line: bytes) -> Any:
        if max_digits and len(line) > max_digits and _has_digit_run(line, max_digits + 1):
            return None
        try:
            return decode(line)
        except Exception:  # DecodeError, ValidationError, RecursionError, ...: json_value decides
            return None

    if checked:
        return checked_record

    def record(line: bytes) -> Any:
        if not line.isascii():
            try:
                line.decode("utf-8", "surrogatepass")  # what json.loads decodes a line starting with "{" by
            except UnicodeDecodeError:
                return None
        return checked_record(line)

    return record


@functools.lru_cache(maxsize=64)
def _struct_decoder(fields: tuple[tuple[str, str], ...], plain: bool) -> Callable[[bytes], Any]:
    """The msgspec decoder of a struct of the mapped fields (one per mapping, not per file: building the
    struct type and its decoder costs more than reading a small file)."""
    record_type = msgspec.defstruct(
        "MappedRecord",
        [(f"f{i}", _PLAIN_TYPES[target] if plain else Any, None) for i, (_, target) in enumerate(fields)],
        rename={f"f{i}": name for i, (name, _) in enumerate(fields)},
        namespace={_ABSENT: None},  # what plain_entry_reader picks for a target no field maps to
        gc=False,  # decoded JSON values hold no reference cycles
    )
    return msgspec.json.Decoder(record_type).decode


_ABSENT: Final = "absent"  # a class attribute (None) of the mapped-fields struct, never a field (f0, f1, ...)


def _capped(name: str) -> Any:
    return Annotated[str, msgspec.Meta(max_length=FIELD_CAPS[name])]


_NAME = Annotated[str, msgspec.Meta(max_length=NAME_CAP)]
_NAMES = Annotated[tuple[_NAME, ...], msgspec.Meta(max_length=MAX_NAMES)] | _NAME | None  # (a list: a tuple)
# A plain record's value types: strings or null, names also a list of strings; each within its cap, so the
# entry is within every cap (parse.cap_entry cuts nothing) unless the file's default source is not
_PLAIN_TYPES: Final[dict[str, Any]] = {
    **{name: (_capped(name) if name in FIELD_CAPS else str) | None for name in _TARGETS},
    "authors": _NAMES,
    "categories": _NAMES,
}


def plain_entry_reader(
    fields: Mapping[str, str], *, origin: str, source: str, checked: bool = False
) -> Callable[[bytes], RawEntry | None]:
    """A reader of one line into the entry the general reading gives it (mapped_decoder or json_value, then
    mapped_entry and cap_entry), for the common record: every mapped value a string or null (names also a
    list of strings), each within its cap (_PLAIN_TYPES), so the entry is within the caps. Any other line ->
    None, for the general reading. Such values need none of mapped_entry's conversions, and with one field
    per target the first set value is the field's own (an empty one maps as an unset one does). `checked`: as
    mapped_decoder's. The entry's attribute dict is built here in RawEntry's field order (_entry_fields'
    dict, without its call and new_entry's check of the order)."""
    decode = _line_decoder(fields, plain=True, checked=checked)
    targets = list(fields.values())
    picked: Callable[[Any], tuple[Any, ...]]
    if len(set(targets)) == len(targets):
        names = {target: f"f{i}" for i, target in enumerate(targets)}
        picked = operator.attrgetter(*(names.get(t, _ABSENT) for t in _ENTRY_ORDER))
    else:
        as_tuple = msgspec.structs.astuple

        def picked(record: Any) -> tuple[Any, ...]:
            get = _first_set(zip(as_tuple(record), targets, strict=True)).get
            return tuple(get(t) for t in _ENTRY_ORDER)

    capped = len(source) <= FIELD_CAPS["source"]  # else the entry of a record without a source is not
    html = _HTML.search
    new = RawEntry.__new__
    set_dict = object.__setattr__

    def read(line: bytes) -> RawEntry | None:
        record = decode(line)
        if record is None:
            return None
        (
            src,
            guid,
            link,
            title,
            summary,
            body,
            authors,
            language,
            categories,
            published,
            updated,
            attribution,
        ) = picked(record)
        title = title or ""
        body = body or ""
        summary = summary or None
        values = {
            "origin": origin,
            "source": src or source,
            "feed_url": None,
            "guid": guid or None,
            "link": link or None,
            "title": title,
            "title_is_html": "<" in title and html(title) is not None,
            "summary": summary,
            "body": body,
            "body_is_html": "<" in body and html(body) is not None,
            "authors": _plain_names(authors) if authors else (),
            "language": language or None,
            "categories": _plain_names(categories) if categories else (),
            "published": published or None,
            "updated": updated or None,
            "references": (),
            "attribution": attribution or None,
            "summary_is_html": summary is not None and "<" in summary and html(summary) is not None,
            "base": None,
            "published_parsed": None,
            "updated_parsed": None,
        }
        if not (capped or within_caps(values)):
            return None
        entry = new(RawEntry)
        set_dict(entry, "__dict__", values)
        return entry

    return read


def _plain_names(value: tuple[str, ...] | str | None) -> tuple[str, ...]:
    """_strings(value) for a names value of a plain record (a list of strings, decoded as a tuple, kept as it
    is when no name is empty; a string; or unset: None, "" or [], all of which map to no names)."""
    if not value:
        return ()
    if isinstance(value, str):
        return (value,)
    return value if "" not in value else tuple(filter(None, value))


_DIGITS_ONLY: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))


def _has_digit_run(line: bytes, length: int) -> bool:
    """Whether `line` holds `length` ASCII digits in a row (linear: one translate, one substring search)."""
    return b"0" * length in line.translate(_DIGITS_ONLY)


def json_value(line: bytes) -> Any:
    """json.loads(line), decoded by msgspec (about twice as fast) when it takes the line; anything it refuses
    (NaN, Infinity, lone surrogates, other encodings, invalid JSON) goes to json.loads, so the values and the
    errors are json.loads' own."""
    try:
        return _DECODE_JSON(line)
    except Exception:  # msgspec's DecodeError, ValidationError, RecursionError, ...: the reference decides
        return json.loads(line)


def _line_json(line: bytes) -> tuple[Any, list[str]]:
    """(json_value(line), notes); a line json.loads refuses for its encoding, a long integer or a control
    character in a string is read as parse.lenient_json reads a document, with a note."""
    try:
        return json_value(line), []
    except ValueError:  # (UnicodeDecodeError too)
        return lenient_json(line)


def _suffix_free(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    for ext in (".gz", ".jsonl"):
        name = name.removesuffix(ext)
    return name


def record_entry(
    record: Mapping[str, Any], fields: Mapping[str, str], *, origin: str, source: str
) -> RawEntry:
    """Map one archive record onto a RawEntry (the same input normalize() gets from feeds)."""
    return mapped_entry(mapped_values(record, fields), origin=origin, source=source)


def mapped_values(record: Mapping[str, Any], fields: Mapping[str, str]) -> dict[str, Any]:
    """RawEntry field -> the record's value: the first mapped field (in mapping order) that is set."""
    return _first_set((record.get(src), target) for src, target in fields.items())


def _first_set(pairs: Iterable[tuple[Any, str]]) -> dict[str, Any]:
    """target -> the first value given for it that is set (neither None nor ""), from (value, target)."""
    values: dict[str, Any] = {}
    for value, target in pairs:
        if value is not None and value != "" and target not in values:
            values[target] = value
    return values


def mapped_entry(values: Mapping[str, Any], *, origin: str, source: str) -> RawEntry:
    """The RawEntry of a record's mapped values (built as new_entry does: no per-field setattr)."""
    get = values.get
    return new_entry(
        _entry_fields(
            origin,
            _text(get("source")) or source,
            _text(get("guid")),
            _text(get("link")),
            _text(get("title")) or "",
            _text(get("summary")),
            _text(get("body")) or "",
            _strings(get("authors")),
            _text(get("language")),
            _strings(get("categories")),
            _text(get("published")),
            _text(get("updated")),
            _text(get("attribution")),
        )
    )


def _entry_fields(
    origin: str,
    source: str,
    guid: str | None,
    link: str | None,
    title: str,
    summary: str | None,
    body: str,
    authors: tuple[str, ...],
    language: str | None,
    categories: tuple[str, ...],
    published: str | None,
    updated: str | None,
    attribution: str | None,
) -> dict[str, Any]:
    """Every RawEntry field of a record's text values, in order (for new_entry)."""
    return {
        "origin": origin,
        "source": source,
        "feed_url": None,
        "guid": guid,
        "link": link,
        "title": title,
        "title_is_html": _looks_html(title),
        "summary": summary,
        "body": body,
        "body_is_html": _looks_html(body),
        "authors": authors,
        "language": language,
        "categories": categories,
        "published": published,
        "updated": updated,
        "references": (),
        "attribution": attribution,
        "summary_is_html": _looks_html(summary) if summary else False,
        "base": None,
        "published_parsed": None,
        "updated_parsed": None,
    }


def _looks_html(text: str) -> bool:
    return "<" in text and _HTML.search(text) is not None


def _text(value: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, (list, tuple)):
        return "\n\n".join(str(v) for v in value if v is not None) or None
    return str(value)


def _strings(value: Any) -> tuple[str, ...]:
    """A list of names ({"name": ...} objects allowed) or one name."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        if all(v.__class__ is str for v in value):  # the usual list of names, as they are
            return tuple(filter(None, value))
        return tuple(str(v.get("name", "")) if isinstance(v, dict) else str(v) for v in value if v)
    return (str(value),)
