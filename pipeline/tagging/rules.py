"""Explainable topic tagging against the versioned taxonomy in schemas/topics.yaml.

Title and body are normalized once, together (" title \xff body "): UTF-8 bytes, ASCII lower-cased,
punctuation and whitespace turned into spaces, read back as Latin-1 (one character per byte; a case-kept
copy shares the offsets; offsets before the separator are in the title). ONE Aho-Corasick automaton holds
every term form, blocking phrase and context phrase of every topic as " form ", so one scan finds them all
and every match is a whole-word match. Its values are tuples of ints, built once: forms that need no check
count at once; case rules, context rules (a walk over the neighbouring matches), blocking phrases (only
when one matched) and the overlap rule (only for forms that can overlap) are checked for the rest.
Every tag carries its evidence: {"topic", "term", "count", "in_title"}.
The YAML rule language is documented at the top of schemas/topics.yaml.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
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


# A context rule: ((context phrase set id, whether it must be near), ...), words before, words after
_Rule = tuple[tuple[tuple[int, bool], ...], int, int]
# A term form that needs checks: (term id, topic rank, wait, case-exact forms or None, rule or None);
# wait is 2 when its hits can overlap another form's of the topic, 1 when the topic has blocking phrases
_Checked = tuple[int, int, int, frozenset[str] | None, _Rule | None]
# What a form is to the topics: (term ids that count with no check, forms to check, topic ranks it blocks)
_Work = tuple[tuple[int, ...], tuple[_Checked, ...], tuple[int, ...]]
# An automaton value: (form length, context phrase set ids, work or () for a context phrase only)
_Value = tuple[int, tuple[int, ...], _Work | tuple[()]]


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
        rank = {topic_id: i for i, topic_id in enumerate(sorted(t.id for t in taxonomy.topics))}
        # term ids follow (topic, term) order: sorting ids sorts hits by topic, then by term
        ordered = sorted(((topic.id, term.name), term) for topic in taxonomy.topics for term in topic.terms)
        self._terms: tuple[tuple[str, str], ...] = tuple(pair for pair, _ in ordered)
        self._ranks: tuple[int, ...] = tuple(rank[topic_id] for (topic_id, _), _ in ordered)
        blocking = {topic.id for topic in taxonomy.topics if topic.blockers}
        overlapping = _overlapping_forms(taxonomy)
        # automaton key -> terms it is a form of (with no check, to check), topics it blocks, context sets
        plain: dict[str, list[int]] = {}
        checked: dict[str, list[_Checked]] = {}
        blockers: dict[str, list[int]] = {}
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

        for tid, ((topic_id, _), term) in enumerate(ordered):
            rule = term.rule
            checks: _Rule | None = None
            if rule:  # an `unless` phrase near drops the hit, then a `require` phrase must be near
                pairs = ((context_id(rule.unless), False), (context_id(rule.require), True))
                checks = (tuple(p for p in pairs if p[0] != _NO_CONTEXT), rule.before, rule.after)
            for key in term.keys:
                # 2: its hits wait for the overlap rule; 1: they wait only when a blocking phrase matched
                wait = 2 if (topic_id, key) in overlapping else 1 if topic_id in blocking else 0
                if rule is None and term.exact_forms is None and not wait:
                    plain.setdefault(key, []).append(tid)  # counts wherever it matches
                    continue
                checked.setdefault(key, []).append((tid, rank[topic_id], wait, term.exact_forms, checks))
        for topic in taxonomy.topics:
            for blocker in topic.blockers:
                blockers.setdefault(blocker, []).append(rank[topic.id])
        keys = plain.keys() | checked.keys() | blockers.keys() | contexts.keys()
        self._longest = max(map(len, keys))
        self._automaton = ahocorasick.Automaton()
        for key in keys:
            work = (tuple(plain.get(key, ())), tuple(checked.get(key, ())), tuple(blockers.get(key, ())))
            value: _Value = (len(key), tuple(contexts.get(key, ())), work if any(work) else ())
            self._automaton.add_word(f" {key} ", value)
        self._automaton.make_automaton()
        log.debug("tagger built: %d topics, %d automaton keys", len(taxonomy.topics), len(self._automaton))

    def tag(self, title: str, body: str) -> tuple[list[str], list[dict[str, Any]]]:
        """Return (sorted topic ids, hits); each hit is {"topic", "term", "count", "in_title"}.

        Hits are ordered by topic, then by count (highest first), then by term.
        """
        # One scan serves both fields: " title \xff body ". Byte 0xFF never occurs in UTF-8, so no form
        # spans the two fields, and offsets before the separator are in the title.
        head = title.encode("utf-8", "surrogatepass")
        if not head.isascii():
            head = _UNICODE_SEPARATORS.sub(b" ", head)
        tail = body.encode("utf-8", "surrogatepass")
        if not tail.isascii():
            tail = _UNICODE_SEPARATORS.sub(b" ", tail)
        raw = b"".join((b" ", head, b" \xff ", tail, b" "))
        norm = raw.translate(_ASCII_LOWER_TO_SPACE).decode("latin-1")
        matches: list[tuple[int, _Value]] = list(self._automaton.iter(norm))
        if not matches:
            return [], []
        sep = len(head) + 2  # norm[sep] is the separator
        # blocking phrases are rare: hits wait for them only when one matched
        found = self._kept(matches, raw, norm, sep, 1) or self._kept(matches, raw, norm, sep, 0)
        assert found is not None  # with patience 0, _kept never gives up
        kept, titled = found
        if not kept:
            return [], []
        kept.sort()
        ranks, terms = self._ranks, self._terms
        rows: list[tuple[int, int, int]] = []
        tid, count = kept[0], 0
        for other in kept:
            if other == tid:
                count += 1
            else:
                rows.append((ranks[tid], -count, tid))
                tid, count = other, 1
        rows.append((ranks[tid], -count, tid))
        rows.sort()
        topics: list[str] = []
        hits: list[dict[str, Any]] = []
        for _, neg, tid in rows:
            topic, name = terms[tid]
            if not topics or topics[-1] != topic:
                topics.append(topic)
            hits.append({"topic": topic, "term": name, "count": -neg, "in_title": tid in titled})
        return topics, hits

    def _kept(
        self, matches: list[tuple[int, _Value]], raw: bytes, norm: str, sep: int, patience: int
    ) -> tuple[list[int], set[int]] | None:
        """Term ids of the hits among `matches` that count (with repeats), and the set of those in the title.
        Hits that wait more than `patience` go through the blocking and overlap rules; None when a blocking
        phrase matched while hits it may block did not wait."""
        split = bisect_left(matches, (sep,))  # matches[:split] are in the title
        titled = {tid for _, (_, _, work) in matches[:split] if work for tid in work[0]}
        kept: list[int] = []
        later: list[tuple[int, int, int, int]] = []  # (topic rank, start, -end, term id) of waiting hits
        blocked: list[tuple[int, int, tuple[int, ...]]] = []  # (start, end, topic ranks) of blocking phrases
        longest = self._longest
        for i, (end, (n, _, work)) in enumerate(matches):
            if not work:
                continue  # a context phrase only
            plain, checked, blocks = work
            if plain:
                kept.extend(plain)
            if checked:
                start = end - n  # norm[start:end] is the matched form, between two spaces
                for tid, rank, wait, exact_forms, rule in checked:
                    if (
                        exact_forms is not None
                        and raw[start:end].translate(_ASCII_TO_SPACE).decode("latin-1") not in exact_forms
                    ):
                        continue
                    if rule is not None and not _rule_holds(matches, i, norm, start, end, sep, rule, longest):
                        continue
                    if wait > patience:
                        later.append((rank, start, -end, tid))
                        continue
                    kept.append(tid)
                    if end < sep:
                        titled.add(tid)
            if blocks:
                if patience:
                    return None
                blocked.append((end - n, end, blocks))
        if later:
            _resolve(later, blocked, sep, kept, titled)
        return kept, titled

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


def _resolve(
    later: list[tuple[int, int, int, int]],
    blocked: list[tuple[int, int, tuple[int, ...]]],
    sep: int,
    kept: list[int],
    titled: set[int],
) -> None:
    """Add to `kept` (and `titled`) the hits of `later` that no blocking phrase of their topic overlaps and
    that survive the overlap rule: overlapping hits of one topic count once, as the longest."""
    later.sort()
    covered = (-1, -1)  # (topic rank, end) of the last hit that counted
    for rank, start, neg_end, tid in later:
        end = -neg_end
        if blocked and any(
            b_start < end and start < b_end and rank in ranks for b_start, b_end, ranks in blocked
        ):
            continue
        if rank != covered[0] or start >= covered[1]:
            covered = (rank, end)
            kept.append(tid)
            if start < sep:
                titled.add(tid)


def _rule_holds(
    matches: list[tuple[int, _Value]],
    i: int,
    norm: str,
    start: int,
    end: int,
    sep: int,
    rule: _Rule,
    longest: int,
) -> bool:
    """Whether the hit norm[start:end] (matches[i]) passes a context rule: for each (set, wanted), whether a
    phrase of the set lies within `before` words left or `after` words right of it in its field (title
    before `sep`, body after), counting the words strictly between them (at most WORDS_CHARS characters a
    word). Matches are ordered by end offset; no form is longer than `longest` characters."""
    checks, before, after = rule
    first = start - WORDS_CHARS * before  # a phrase before ends at or after `first`
    last = end + WORDS_CHARS * after  # a phrase after starts at or before `last`
    if end < sep:  # the title
        if last > sep:
            last = sep
    elif first < sep:
        first = sep
    for set_id, wanted in checks:
        found = False
        j = i - 1
        while j >= 0:
            c_end, value = matches[j]
            if c_end < first:
                break
            if c_end < start and set_id in value[1] and len(norm[c_end:start].split()) < before:
                found = True
                break
            j -= 1
        if not found:
            for j in range(i + 1, len(matches)):
                c_end, value = matches[j]
                c_start = c_end - value[0]
                if c_start > last:
                    if c_end - longest > last:
                        break
                elif c_start > end and set_id in value[1] and len(norm[end:c_start].split()) < after:
                    found = True
                    break
        if found is not wanted:
            return False
    return True


def _overlapping_forms(taxonomy: Taxonomy) -> set[tuple[str, str]]:
    """(topic, form) pairs whose whole-word matches can overlap another match of a form of the same topic."""
    out: set[tuple[str, str]] = set()
    for topic in taxonomy.topics:
        forms = {key: key.split(" ") for term in topic.terms for key in term.keys}
        for a, a_words in forms.items():
            for b, b_words in forms.items():
                if _can_overlap(a_words, b_words, same=a == b):
                    out.update({(topic.id, a), (topic.id, b)})
    return out


def _can_overlap(a: list[str], b: list[str], *, same: bool) -> bool:
    """Whether word sequences a and b can share a word when both occur in a text (b placed at any offset
    relative to a; a form does not overlap itself at offset 0)."""
    for offset in range(-len(b) + 1, len(a)):
        if same and offset == 0:
            continue
        pairs = [(a[k], b[k - offset]) for k in range(max(0, offset), min(len(a), offset + len(b)))]
        if pairs and all(x == y for x, y in pairs):
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
