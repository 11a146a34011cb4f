"""The versioned taxonomy (schemas/topics.yaml): loading and validation. The rule language is documented at
the top of that file; every error is a ConfigError naming the file, the topic and the field."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import ConfigError
from pipeline.schema import YAML_LOADER, schemas_dir
from pipeline.tagging.text import normalize_phrase

DEFAULT_WINDOW = 6
DEFAULT_DISMISSAL_WINDOW = (8, 5)
_TOPIC_ID = re.compile(r"[a-z][a-z0-9_]*")
_TOP_KEYS = {"version", "topics", "sense"}
_SENSE_KEYS = {"model", "dismissal", "window", "classes"}
_TOPIC_KEYS = {"id", "label", "terms", "not", "candidates"}
_TERM_KEYS = {"term", "aliases", "case", "plural", "require", "unless", "window"}
_CANDIDATE_KEYS = {"term", "aliases", "case", "plural", "require_in_story", "suffix"}
_Fail = Callable[[str, str], ConfigError]


@dataclass(frozen=True, slots=True)
class ContextRule:
    """`require`/`unless` phrases (normalized, plurals included) of one term, and its window in words."""

    require: tuple[str, ...]
    unless: tuple[str, ...]
    before: int
    after: int


@dataclass(frozen=True, slots=True)
class Term:
    topic: str
    name: str  # canonical form, reported in topic_hits
    keys: tuple[str, ...]  # normalized forms (plural, aliases) as matched
    exact_forms: frozenset[str] | None  # for `case: exact`: normalized forms with their case kept
    rule: ContextRule | None
    in_story: tuple[str, ...] = ()  # candidates: one of these phrases must occur somewhere in the story
    suffix: bool = False  # candidates: the forms also match the end of a longer word (FoodTok)


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    terms: tuple[Term, ...]
    blockers: tuple[str, ...]  # normalized blocking phrases
    # None: decided by the rules alone; a tuple (maybe empty): decided by the sense model for any story with
    # a mention (a form of a term or of a candidate), the rule hits being some of its features
    candidates: tuple[Term, ...] | None = None

    @property
    def sensed(self) -> bool:
        return self.candidates is not None


@dataclass(frozen=True)
class SenseSettings:
    """The `sense` block: where the trained model is, and what dismisses a mention."""

    model: Path
    dismissal: tuple[str, ...]  # normalized words / phrases
    window: tuple[int, int]  # words before / after a mention, in its sentence
    classes: tuple[tuple[str, frozenset[str]], ...] = ()  # (name, normalized single words)


@dataclass(frozen=True)
class Taxonomy:
    version: str
    topics: tuple[Topic, ...]
    source: str = "<dict>"
    sense: SenseSettings | None = None

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """Read and validate a taxonomy file (default schemas/topics.yaml). Raises ConfigError."""
        file = Path(path) if path is not None else schemas_dir() / "topics.yaml"
        try:
            doc = yaml.load(file.read_text("utf-8"), YAML_LOADER)
        except OSError as exc:
            raise ConfigError(f"cannot read taxonomy: {exc}", path=str(file)) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"taxonomy is not valid YAML: {exc}", path=str(file)) from exc
        return cls.from_dict(doc, source=str(file), base=file.parent)

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<dict>", base: Path | None = None) -> Taxonomy:
        """Validate a parsed taxonomy; `base` is the directory the sense model path is relative to."""
        if not isinstance(doc, dict):
            raise ConfigError("taxonomy must be a mapping with version and topics", path=source)
        if unknown := set(doc) - _TOP_KEYS:
            raise ConfigError(
                f"unknown key(s); allowed: {sorted(_TOP_KEYS)}", path=source, field=", ".join(sorted(unknown))
            )
        version = doc.get("version")
        if not isinstance(version, str) or not version.strip():
            raise ConfigError("taxonomy version must be a non-empty string", path=source, field="version")
        raw_topics = doc.get("topics")
        if not isinstance(raw_topics, list) or not raw_topics:
            raise ConfigError("taxonomy topics must be a non-empty list", path=source, field="topics")
        topics: list[Topic] = []
        for i, raw in enumerate(raw_topics):
            topic = _parse_topic(raw, i, source)
            if any(t.id == topic.id for t in topics):
                raise ConfigError(f"duplicate topic id {topic.id!r}", path=source, topic=topic.id, field="id")
            topics.append(topic)
        sense = _parse_sense(doc.get("sense"), source, base or Path.cwd())
        if sense is None and (sensed := [t.id for t in topics if t.sensed]):
            raise ConfigError(
                "topics with candidates need a `sense` block",
                path=source,
                topic=sensed[0],
                field="candidates",
            )
        return cls(version=version.strip(), topics=tuple(topics), source=source, sense=sense)

    @property
    def topic_ids(self) -> list[str]:
        return sorted(t.id for t in self.topics)


def plural(phrase: str) -> str | None:
    """Regular English plural of the last word, or None when it already ends in s."""
    last = phrase[-1:].lower()
    if not last.isalpha() or last == "s":
        return None
    if last == "y" and len(phrase) > 1 and phrase[-2].lower() not in "aeiou":
        return phrase[:-1] + "ies"
    if phrase.lower().endswith(("ch", "sh", "x", "z")):
        return phrase + "es"
    return phrase + "s"


def forms(phrases: Iterable[str], with_plural: bool, *, lower: bool = True) -> tuple[str, ...]:
    """Normalized forms of `phrases`, with the plural of each when `with_plural`."""
    out: dict[str, None] = {}
    for phrase in phrases:
        for form in (phrase, plural(phrase) if with_plural else None):
            if form and (normalized := normalize_phrase(form, lower=lower)):
                out[normalized] = None
    return tuple(out)


def _parse_sense(raw: Any, source: str, base: Path) -> SenseSettings | None:
    if raw is None:
        return None

    def fail(field: str, message: str) -> ConfigError:
        return ConfigError(f"sense.{field}: {message}", path=source, field=f"sense.{field}")

    if not isinstance(raw, dict):
        raise ConfigError("sense must be a mapping", path=source, field="sense")
    if unknown := set(raw) - _SENSE_KEYS:
        raise fail(", ".join(sorted(unknown)), f"unknown key(s); allowed: {sorted(_SENSE_KEYS)}")
    model = raw.get("model")
    if not isinstance(model, str) or not model.strip():
        raise fail("model", "must be the model file, relative to the taxonomy file")
    dismissal = _string_list(raw.get("dismissal", []), "dismissal", fail)
    window = _parse_window(raw.get("window", list(DEFAULT_DISMISSAL_WINDOW)), "window", fail)
    raw_classes = raw.get("classes", {})
    if not isinstance(raw_classes, dict):
        raise fail("classes", "must map class names to lists of words")
    classes = []
    for name, words in sorted(raw_classes.items()):
        if not isinstance(name, str) or not _TOPIC_ID.fullmatch(name):
            raise fail("classes", f"class name {name!r} must be snake_case")
        normalized = forms(_string_list(words, f"classes.{name}", fail), with_plural=False)
        if any(" " in w for w in normalized):
            raise fail(f"classes.{name}", "words only, no phrases")
        classes.append((name, frozenset(normalized)))
    dismissal_forms = forms(dismissal, with_plural=False)
    return SenseSettings(base / model.strip(), dismissal_forms, window, tuple(classes))


def _parse_topic(raw: Any, index: int, source: str) -> Topic:
    if not isinstance(raw, dict):
        raise ConfigError(f"topics[{index}] must be a mapping", path=source, field=f"topics[{index}]")
    topic_id = raw.get("id")
    if not isinstance(topic_id, str) or not _TOPIC_ID.fullmatch(topic_id):
        raise ConfigError(
            f"topics[{index}].id must be a snake_case string", path=source, field="id", topic=topic_id
        )

    def fail(field: str, message: str) -> ConfigError:
        return ConfigError(
            f"topic {topic_id!r}, field {field}: {message}", path=source, topic=topic_id, field=field
        )

    if unknown := set(raw) - _TOPIC_KEYS:
        raise fail(", ".join(sorted(unknown)), f"unknown key(s); allowed: {sorted(_TOPIC_KEYS)}")
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise fail("label", "must be a non-empty string")
    raw_terms = raw.get("terms")
    if not isinstance(raw_terms, list) or not raw_terms:
        raise fail("terms", "must be a non-empty list")
    terms = tuple(_parse_term(entry, f"terms[{i}]", topic_id, fail) for i, entry in enumerate(raw_terms))
    candidates = None
    if "candidates" in raw:
        if not isinstance(raw["candidates"], list):
            raise fail("candidates", "must be a list (may be empty)")
        candidates = tuple(
            _parse_term(entry, f"candidates[{i}]", topic_id, fail, candidate=True)
            for i, entry in enumerate(raw["candidates"])
        )
    seen: dict[str, tuple[str, str]] = {}
    for field, entries in (("terms", terms), ("candidates", candidates or ())):
        for term in entries:
            for key in term.keys:
                other = seen.setdefault(key, (field, term.name))
                if other != (field, term.name):
                    raise fail(field, f"form {key!r} belongs to both {other[1]!r} and {term.name!r}")
    blockers = _string_list(raw.get("not", []), "not", fail)
    return Topic(
        id=topic_id,
        label=label.strip(),
        terms=terms,
        blockers=forms(blockers, with_plural=True),
        candidates=candidates,
    )


def _parse_term(entry: Any, field: str, topic_id: str, fail: _Fail, *, candidate: bool = False) -> Term:
    allowed = _CANDIDATE_KEYS if candidate else _TERM_KEYS
    if isinstance(entry, str):
        entry = {"term": entry}
    if not isinstance(entry, dict):
        raise fail(field, "must be a string or a mapping with `term`")
    if unknown := set(entry) - allowed:
        raise fail(f"{field}.{sorted(unknown)[0]}", f"unknown key; allowed: {sorted(allowed)}")
    name = entry.get("term")
    if not isinstance(name, str) or not name.strip():
        raise fail(f"{field}.term", "must be a non-empty string")
    aliases = _string_list(entry.get("aliases", []), f"{field}.aliases", fail)
    case = entry.get("case", "any")
    if case not in ("any", "exact"):
        raise fail(f"{field}.case", "must be 'any' or 'exact'")
    with_plural = entry.get("plural", True)
    suffix = entry.get("suffix", False)
    for key, value in (("plural", with_plural), ("suffix", suffix)):
        if not isinstance(value, bool):
            raise fail(f"{field}.{key}", "must be true or false")
    require = _string_list(entry.get("require", []), f"{field}.require", fail)
    unless = _string_list(entry.get("unless", []), f"{field}.unless", fail)
    in_story = _string_list(entry.get("require_in_story", []), f"{field}.require_in_story", fail)
    before, after = _parse_window(entry.get("window", DEFAULT_WINDOW), f"{field}.window", fail)
    rule = None
    if require or unless:
        if before + after == 0:
            raise fail(f"{field}.window", "a context rule needs a window of at least one word")
        rule = ContextRule(
            require=forms(require, with_plural=True),
            unless=forms(unless, with_plural=True),
            before=before,
            after=after,
        )
    elif "window" in entry:
        raise fail(f"{field}.window", "window given without require or unless")
    keys = forms([name.strip(), *aliases], with_plural)
    if suffix and any(" " in key for key in keys):
        raise fail(f"{field}.suffix", "a suffix form must be one word")
    return Term(
        topic=topic_id,
        name=name.strip(),
        keys=keys,
        exact_forms=frozenset(forms([name.strip(), *aliases], with_plural, lower=False))
        if case == "exact"
        else None,
        rule=rule,
        in_story=forms(in_story, with_plural=True),
        suffix=suffix,
    )


def _parse_window(value: Any, field: str, fail: _Fail) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        return value[0], value[1]
    raise fail(field, "must be a word count >= 0 or [before, after]")


def _string_list(value: Any, field: str, fail: _Fail) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise fail(field, "must be a list of non-empty strings")
    return [v.strip() for v in value]
