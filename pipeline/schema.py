"""The story schema, loaded from schemas/story.v1.yaml, and everything derived from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import yaml

from pipeline.errors import BadRecordError, FatalError

Story = dict[str, Any]
"""One story record: keys and value types exactly as declared in schemas/story.v1.yaml."""

SCHEMA_VERSION = 1
# libyaml's loader when PyYAML was built with it (ten times faster than the pure-Python one, same documents)
YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PRIMITIVES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def schemas_dir() -> Path:
    """The declared schemas: the package data of pipeline.schemas (importlib.resources), which is the
    repository's top-level schemas/ in a checkout or an editable install and pipeline/schemas/ in a wheel.
    An uninstalled source tree (no pipeline.schemas importable) falls back to ../schemas beside pipeline/."""
    try:
        return Path(str(resources.files("pipeline.schemas")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "schemas"


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    nullable: bool
    doc: str


def parse_type(spec: str) -> pa.DataType:
    """Turn 'list<struct{a: string, b: list<int32>}>' into an Arrow type."""
    spec = spec.strip()
    if spec in _PRIMITIVES:
        return _PRIMITIVES[spec]
    m = re.fullmatch(r"list<(.*)>", spec)
    if m:
        return pa.list_(parse_type(m.group(1)))
    m = re.fullmatch(r"struct\{(.*)\}", spec)
    if m:
        return pa.struct([pa.field(n, parse_type(t)) for n, t in _split_members(m.group(1))])
    raise FatalError(f"unknown type in story schema: {spec!r}", type=spec)


def _split_members(body: str) -> list[tuple[str, str]]:
    members, depth, start = [], 0, 0
    for i, ch in enumerate(body + ","):
        if ch in "<{":
            depth += 1
        elif ch in ">}":
            depth -= 1
        elif ch == "," and depth == 0:
            name, _, typ = body[start:i].partition(":")
            members.append((name.strip(), typ.strip()))
            start = i + 1
    return members


@cache
def story_fields() -> tuple[Field, ...]:
    doc = yaml.load((schemas_dir() / f"story.v{SCHEMA_VERSION}.yaml").read_text("utf-8"), YAML_LOADER)
    if doc.get("version") != SCHEMA_VERSION:
        raise FatalError("schemas/story file version does not match the code", version=doc.get("version"))
    return tuple(
        Field(f["name"], f["type"], bool(f.get("nullable", True)), f.get("doc", "")) for f in doc["fields"]
    )


@cache
def arrow_schema() -> pa.Schema:
    """The Arrow schema every Parquet file is written with."""
    return pa.schema(
        [pa.field(f.name, parse_type(f.type), nullable=f.nullable) for f in story_fields()],
        metadata={b"wirefeed.schema": b"story", b"wirefeed.schema_version": str(SCHEMA_VERSION).encode()},
    )


def field_names() -> list[str]:
    return [f.name for f in story_fields()]


def check_story(story: Story) -> None:
    """Raise BadRecordError unless `story` has exactly the declared fields with values of the right type."""
    names = field_names()
    if set(story) != set(names):
        missing, extra = sorted(set(names) - set(story)), sorted(set(story) - set(names))
        raise BadRecordError("story fields differ from schema", missing=missing, extra=extra)
    for f in story_fields():
        _check_value(f.name, parse_type(f.type), story[f.name], f.nullable)


def _check_value(path: str, typ: pa.DataType, value: Any, nullable: bool = True) -> None:
    if value is None:
        if not nullable:
            raise BadRecordError(f"{path} must not be null", field=path)
        return
    ok: bool
    if pa.types.is_string(typ):
        ok = isinstance(value, str)
    elif pa.types.is_boolean(typ):
        ok = isinstance(value, bool)
    elif pa.types.is_integer(typ):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif pa.types.is_timestamp(typ):
        ok = isinstance(value, datetime) and value.utcoffset() is not None and not value.utcoffset()
    elif pa.types.is_list(typ):
        ok = isinstance(value, list)
        if ok:
            for i, item in enumerate(value):
                _check_value(f"{path}[{i}]", typ.value_type, item, nullable=False)
    elif pa.types.is_struct(typ):
        ok = isinstance(value, dict) and set(value) == {typ.field(i).name for i in range(typ.num_fields)}
        if ok:
            for i in range(typ.num_fields):
                sub = typ.field(i)
                _check_value(f"{path}.{sub.name}", sub.type, value[sub.name], nullable=False)
    else:  # pragma: no cover - parse_type only builds the types above
        ok = False
    if not ok:
        raise BadRecordError(f"{path} has the wrong type for {typ}", field=path, value=repr(value)[:80])
