"""Explainable topic tagging against the versioned taxonomy in schemas/topics.yaml.

Each field (title, body) is normalized once: UTF-8 bytes, ASCII lower-cased, punctuation and whitespace
turned into spaces, read back as Latin-1 (one character per byte; a case-kept copy shares the offsets).
ONE Aho-Corasick automaton holds every term form, blocking phrase and context phrase of every topic as
" form ", so one scan finds them all and every match is a whole-word match. Case rules, blocking phrases
and context rules are then checked for the candidate hits alone, by comparing positions.
Every tag carries its evidence: {"topic", "term", "count", "in_title"}.
The YAML rule language is documented at the top of schemas/topics.yaml.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import ahocorasick
import yaml

from pipeline.errors import ConfigError
from pipeline.schema import Story, schemas_dir

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 6
WORDS_CHARS = 16  # a context window of N words looks at most N * WORDS_CHARS characters away
# bytes.translate tables: ASCII punctuation and whitespace -> space (bytes >= 128, UTF-8 parts, kept)
_ASCII_TO_SPACE = bytes(c if c >= 128 or chr(c).isalnum() else ord(" ") for c in range(256))
_ASCII_LOWER_TO_SPACE = _ASCII_TO_SPACE.lower()  # bytes.lower() only touches A-Z
# Non-ASCII separators, in UTF-8: no-break space, hyphens and dashes, curly quotes, ellipsis, guillemets
_UNICODE_SEPARATORS = re.compile(
    b"|".join(
        re.escape(ch.encode("utf-8"))
        for ch in "\u00a0\u2010\u2011\u2012\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u00ab\u00bb"
    )
)
_TOPIC_ID = re.compile(r"[a-z][a-z0-9_]*")
_TOPIC_KEYS = {"id", "label", "terms", "not"}
_TERM_KEYS = {"term", "aliases", "case", "plural", "require", "unless", "window"}
_Fail = Callable[[str, str], ConfigError]
_NO_CONTEXT = -1


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


# a term as the automaton carries it:
# (topic, canonical term, case-exact forms or None, require set id, unless set id, words before, words after)
_Candidate = tuple[str, str, frozenset[str] | None, int, int, int, int]


@dataclass(frozen=True)
class Topic:
    id: str
    label: str
    terms: tuple[Term, ...]
    blockers: tuple[str, ...]  # normalized blocking phrases


@dataclass(frozen=True)
class Taxonomy:
    version: str
    topics: tuple[Topic, ...]
    source: str = "<dict>"

    @classmethod
    def load(cls, path: str | Path | None = None) -> Taxonomy:
        """Read and validate a taxonomy file (default schemas/topics.yaml). Raises ConfigError."""
        file = Path(path) if path is not None else schemas_dir() / "topics.yaml"
        try:
            doc = yaml.safe_load(file.read_text("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read taxonomy: {exc}", path=str(file)) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"taxonomy is not valid YAML: {exc}", path=str(file)) from exc
        return cls.from_dict(doc, source=str(file))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<dict>") -> Taxonomy:
        if not isinstance(doc, dict):
            raise ConfigError("taxonomy must be a mapping with version and topics", path=source)
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
        return cls(version=version.strip(), topics=tuple(topics), source=source)

    @property
    def topic_ids(self) -> list[str]:
        return sorted(t.id for t in self.topics)


class Tagger:
    """Tags text with the topics of one taxonomy. Build once, reuse: construction compiles the automaton."""

    def __init__(self, taxonomy: Taxonomy) -> None:
        self.taxonomy = taxonomy
        # automaton key -> terms it is a form of, topics it blocks, context phrase sets it belongs to
        terms: dict[str, list[_Candidate]] = {}
        blockers: dict[str, list[str]] = {}
        contexts: dict[str, list[int]] = {}
        set_ids: dict[tuple[str, ...], int] = {}  # one id per distinct phrase set (YAML anchors share one)

        def context_id(phrases: tuple[str, ...]) -> int:
            if not phrases:
                return _NO_CONTEXT
            if phrases not in set_ids:
                set_ids[phrases] = len(set_ids)
                for phrase in phrases:
                    contexts.setdefault(phrase, []).append(set_ids[phrases])
            return set_ids[phrases]

        for topic in taxonomy.topics:
            for term in topic.terms:
                rule = term.rule
                candidate: _Candidate = (
                    topic.id,
                    term.name,
                    term.exact_forms,
                    context_id(rule.require) if rule else _NO_CONTEXT,
                    context_id(rule.unless) if rule else _NO_CONTEXT,
                    rule.before if rule else 0,
                    rule.after if rule else 0,
                )
                for key in term.keys:
                    terms.setdefault(key, []).append(candidate)
            for blocker in topic.blockers:
                blockers.setdefault(blocker, []).append(topic.id)
        self._automaton = ahocorasick.Automaton()
        for key in terms.keys() | blockers.keys() | contexts.keys():
            payload = (
                len(key),
                tuple(terms.get(key, ())),
                tuple(blockers.get(key, ())),
                tuple(contexts.get(key, ())),
            )
            self._automaton.add_word(f" {key} ", payload)
        self._automaton.make_automaton()
        log.debug("tagger built: %d topics, %d automaton keys", len(taxonomy.topics), len(self._automaton))

    def tag(self, title: str, body: str) -> tuple[list[str], list[dict[str, Any]]]:
        """Return (sorted topic ids, hits); each hit is {"topic", "term", "count", "in_title"}.

        Hits are ordered by topic, then by count (highest first), then by term.
        """
        title_hits = self._field_hits(title) if title else []
        all_hits = title_hits + self._field_hits(body) if body else title_hits
        if not all_hits:
            return [], []
        rows = sorted((topic, -n, term) for (topic, term), n in Counter(all_hits).items())
        in_title = set(title_hits)
        hits: list[dict[str, Any]] = [
            {"topic": topic, "term": term, "count": -neg, "in_title": (topic, term) in in_title}
            for topic, neg, term in rows
        ]
        return sorted({row[0] for row in rows}), hits

    def tag_story(self, story: Story) -> Story:
        """Set topics, topic_hits and taxonomy_version on `story` (in place) and return it.

        Uses the title and the body, or the summary when the body is empty.
        """
        body = story.get("body") or story.get("summary") or ""
        topics, hits = self.tag(story.get("title") or "", body)
        story["topics"] = topics
        story["topic_hits"] = hits
        story["taxonomy_version"] = self.taxonomy.version
        return story

    def _field_hits(self, text: str) -> list[tuple[str, str]]:
        """(topic, canonical term) for every hit in one field that survives all rules."""
        raw = b" " + _separators_to_spaces(text.encode("utf-8", "surrogatepass")) + b" "
        norm = raw.translate(_ASCII_LOWER_TO_SPACE).decode("latin-1")
        candidates: list[tuple[int, int, tuple[_Candidate, ...]]] = []
        blocked: list[tuple[int, int, tuple[str, ...]]] = []
        near: dict[int, list[tuple[int, int]]] = {}  # context phrase set id -> spans found
        for last, (n, terms, blocks, contexts) in self._automaton.iter(norm):
            start = last - n  # norm[start:last] is the matched form, between two spaces
            if terms:
                candidates.append((start, last, terms))
            if blocks:
                blocked.append((start, last, blocks))
            for set_id in contexts:
                near.setdefault(set_id, []).append((start, last))
        if not candidates:
            return []
        cased: str | None = None
        kept: list[tuple[str, int, int, str]] = []
        for start, end, terms in candidates:
            for topic, name, exact_forms, require, unless, before, after in terms:
                if exact_forms is not None:
                    cased = cased or raw.translate(_ASCII_TO_SPACE).decode("latin-1")
                    if cased[start:end] not in exact_forms:
                        continue
                if blocked and _is_blocked(blocked, topic, start, end):
                    continue
                spans = near.get(unless) if unless != _NO_CONTEXT else None
                if spans and _is_near(spans, norm, start, end, before, after):
                    continue
                if require != _NO_CONTEXT:
                    spans = near.get(require)
                    if not spans or not _is_near(spans, norm, start, end, before, after):
                        continue
                kept.append((topic, start, -end, name))
        if len(kept) < 2:
            return [(topic, name) for topic, _, _, name in kept]
        kept.sort()
        hits: list[tuple[str, str]] = []
        covered: tuple[str, int] = ("", -1)  # overlapping hits of one topic count once, as the longest
        for topic, start, neg_end, name in kept:
            if topic != covered[0] or start >= covered[1]:
                covered = (topic, -neg_end)
                hits.append((topic, name))
        return hits


@cache
def default_tagger() -> Tagger:
    """The tagger for schemas/topics.yaml, built once per process."""
    return Tagger(Taxonomy.load())


def _separators_to_spaces(raw: bytes) -> bytes:
    """Replace non-ASCII separators (curly quotes, dashes, no-break space) by a space each."""
    return raw if raw.isascii() else _UNICODE_SEPARATORS.sub(b" ", raw)


def _normalize(phrase: str, *, lower: bool = True) -> str:
    """A phrase as the automaton sees it: words separated by single spaces, ASCII lower-cased."""
    raw = _separators_to_spaces(phrase.encode("utf-8", "surrogatepass"))
    table = _ASCII_LOWER_TO_SPACE if lower else _ASCII_TO_SPACE
    return " ".join(raw.translate(table).decode("latin-1").split())


def _is_blocked(blocked: list[tuple[int, int, tuple[str, ...]]], topic: str, start: int, end: int) -> bool:
    return any(b_start < end and start < b_end and topic in topics for b_start, b_end, topics in blocked)


def _is_near(spans: list[tuple[int, int]], norm: str, start: int, end: int, before: int, after: int) -> bool:
    """Whether a context phrase span lies within `before` words left or `after` words right of the hit
    norm[start:end] (counting the words strictly between them; at most WORDS_CHARS characters a word)."""
    for c_start, c_end in spans:
        if c_end < start:
            if start - c_end <= WORDS_CHARS * before and len(norm[c_end:start].split()) < before:
                return True
        elif (
            c_start > end and c_start - end <= WORDS_CHARS * after and len(norm[end:c_start].split()) < after
        ):
            return True
    return False


def _plural(phrase: str) -> str | None:
    """Regular English plural of the last word, or None when it already ends in s."""
    last = phrase[-1:].lower()
    if not last.isalpha() or last == "s":
        return None
    if last == "y" and len(phrase) > 1 and phrase[-2].lower() not in "aeiou":
        return phrase[:-1] + "ies"
    if phrase.lower().endswith(("ch", "sh", "x", "z")):
        return phrase + "es"
    return phrase + "s"


def _forms(phrases: Iterable[str], plural: bool, *, lower: bool = True) -> tuple[str, ...]:
    """Normalized forms of `phrases`, with the plural of each when `plural`."""
    out: dict[str, None] = {}
    for phrase in phrases:
        for form in (phrase, _plural(phrase) if plural else None):
            if form and (normalized := _normalize(form, lower=lower)):
                out[normalized] = None
    return tuple(out)


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
    seen: dict[str, str] = {}
    for term in terms:
        for key in term.keys:
            other = seen.setdefault(key, term.name)
            if other != term.name:
                raise fail("terms", f"form {key!r} belongs to both {other!r} and {term.name!r}")
    blockers = _string_list(raw.get("not", []), "not", fail)
    return Topic(
        id=topic_id,
        label=label.strip(),
        terms=terms,
        blockers=_forms(blockers, plural=True),
    )


def _parse_term(entry: Any, field: str, topic_id: str, fail: _Fail) -> Term:
    if isinstance(entry, str):
        entry = {"term": entry}
    if not isinstance(entry, dict):
        raise fail(field, "must be a string or a mapping with `term`")
    if unknown := set(entry) - _TERM_KEYS:
        raise fail(f"{field}.{sorted(unknown)[0]}", f"unknown key; allowed: {sorted(_TERM_KEYS)}")
    name = entry.get("term")
    if not isinstance(name, str) or not name.strip():
        raise fail(f"{field}.term", "must be a non-empty string")
    aliases = _string_list(entry.get("aliases", []), f"{field}.aliases", fail)
    case = entry.get("case", "any")
    if case not in ("any", "exact"):
        raise fail(f"{field}.case", "must be 'any' or 'exact'")
    plural = entry.get("plural", True)
    if not isinstance(plural, bool):
        raise fail(f"{field}.plural", "must be true or false")
    require = _string_list(entry.get("require", []), f"{field}.require", fail)
    unless = _string_list(entry.get("unless", []), f"{field}.unless", fail)
    before, after = _parse_window(entry.get("window", DEFAULT_WINDOW), f"{field}.window", fail)
    rule = None
    if require or unless:
        if before + after == 0:
            raise fail(f"{field}.window", "a context rule needs a window of at least one word")
        rule = ContextRule(
            require=_forms(require, plural=True),
            unless=_forms(unless, plural=True),
            before=before,
            after=after,
        )
    elif "window" in entry:
        raise fail(f"{field}.window", "window given without require or unless")
    return Term(
        topic=topic_id,
        name=name.strip(),
        keys=_forms([name.strip(), *aliases], plural),
        exact_forms=frozenset(_forms([name.strip(), *aliases], plural, lower=False))
        if case == "exact"
        else None,
        rule=rule,
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
