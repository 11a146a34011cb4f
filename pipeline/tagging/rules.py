"""Explainable topic tagging against the versioned taxonomy in schemas/topics.yaml.

Title and body are normalized once, together (pipeline.tagging.text.prepare: " title \\xff body ", offsets
before the separator are in the title). ONE Aho-Corasick automaton holds every term form, candidate form,
blocking phrase and context phrase of every topic as " form " (a suffix candidate as "form "), so one scan
finds them all and every match is a whole-word match. Its values are tuples of ints, built once: forms that
need no check count at once; case rules, context rules (a walk over the neighbouring matches), blocking
phrases (only when one matched) and the overlap rule (only for forms that can overlap) are checked for the
rest. Topics with `candidates` are decided by the sense model (pipeline.tagging.sense) for the stories that
mention them, and only those: the rules stay the fast candidate finder and part of the evidence.
Every tag carries its evidence: {"topic", "term", "count", "in_title"}.
The YAML rule language is documented at the top of schemas/topics.yaml.
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from functools import cache
from itertools import chain
from operator import itemgetter
from typing import Any, Literal

import ahocorasick_rs

from pipeline.errors import ConfigError
from pipeline.schema import Story
from pipeline.tagging.sense import (
    LEAD_CHARS,
    SENSE_PREFIX,
    Mention,
    SenseInput,
    SenseModel,
    Verdict,
)
from pipeline.tagging.taxonomy import Taxonomy
from pipeline.tagging.text import ASCII_LOWER_TO_SPACE, ASCII_TO_SPACE, SEPARATOR, prepare_raw

# The scans compiled (pipeline/tagging/_automaton.c); ahocorasick_rs is the fallback, with equal results.
try:
    from pipeline.tagging._automaton import Automaton

    COMPILED: type[Automaton] | None = Automaton
except ImportError:  # pragma: no cover - installed without a C compiler
    COMPILED = None

try:  # the sense model's word lookup in C (pipeline/tagging/_accel.c), when it was built: same output
    from pipeline.tagging import _accel
except ImportError:  # installed without a C compiler: the pure-Python loops
    _accel = None  # type: ignore[assignment]

__all__ = ["Explanation", "Tagger", "Taxonomy", "default_tagger"]

log = logging.getLogger(__name__)

NEAR = 2  # words each side of an affirmed mention that are its `near:` cues
NEAR_WORDS = 24  # at most about this many (the first mentions')
NEAR_CHARS = 48  # found within this many characters of the mention
WORDS_CHARS = 16  # a context window of N words looks at most N * WORDS_CHARS characters away
_NO_CONTEXT = -1
_SECOND = itemgetter(1)
_LATIN1_SPACES = bytes.maketrans(b"\x85\xa0", b"  ")  # whitespace to str.split() in latin-1 text
_SEPARATOR_BYTES = frozenset(b" \t\n\v\f\r\x85\xa0")  # what splits words (_words_of): never in one

# A context rule: ((context phrase set id, whether it must be near), ...), words before, words after
_Rule = tuple[tuple[tuple[int, bool], ...], int, int]
# A term form that needs checks: (term id, topic rank, wait, case-exact forms or None, rule or None);
# wait is 2 when its hits can overlap another form's of the topic, 1 when the topic has blocking phrases
_Checked = tuple[int, int, int, frozenset[str] | None, _Rule | None]
# A mention of a sensed topic: (topic rank, term or candidate name, case-exact forms or None, the phrase set
# id one of which must occur in the story or _NO_CONTEXT)
_Mention = tuple[int, str, frozenset[str] | None, int]
# What a form is to the topics: (term ids that count with no check, forms to check, topic ranks it blocks,
# mentions of sensed topics)
_Work = tuple[tuple[int, ...], tuple[_Checked, ...], tuple[int, ...], tuple[_Mention, ...]]
# An automaton value: (form length, context phrase set ids, work or () for a context phrase only)
_Value = tuple[int, tuple[int, ...], _Work | tuple[()]]
# Where mention forms matched: (index in the matches, mentions)
_Found = list[tuple[int, tuple[_Mention, ...]]]
# A sentence ends at . ? ! ; followed by a space (not after a capital: "U.S. rate"), or at a line break
_SENTENCE_END = re.compile(rb"(?:[^A-Z][.?!;]|[\r\n])\s")


@dataclass(frozen=True)
class Explanation:
    """Everything behind one story's tags: the result, the sense model's verdicts (one per sensed topic
    the story mentions) and, per topic not tagged, the term forms that matched but failed their rules."""

    topics: list[str]
    hits: list[dict[str, Any]]
    verdicts: dict[str, Verdict]
    near_misses: dict[str, list[str]]


@dataclass(slots=True)
class _Scan:
    raw: bytes
    low: bytes  # norm's bytes
    norm: str
    sep: int
    matches: list[tuple[int, _Value]]
    kept: list[int]
    titled: set[int]
    found: _Found
    blocked: list[tuple[int, int, tuple[int, ...]]]  # (start, end, topic ranks) of blocking phrases


class Tagger:
    """Tags text with the topics of one taxonomy. Build once, reuse: construction compiles the automaton.

    `model`: "auto" loads the sense model the taxonomy names (`sense.model`), None decides every topic by
    its rules alone (candidates are then only collected, for training), or a SenseModel.
    `compiled`: run the compiled parts where they were built, the scan (pipeline/tagging/_automaton.c) and
    the sense model's word lookup (pipeline/tagging/_accel.c); False: ahocorasick_rs and the Python loop.
    The output is the same.
    """

    def __init__(
        self,
        taxonomy: Taxonomy,
        model: SenseModel | Literal["auto"] | None = "auto",
        *,
        compiled: bool = True,
    ) -> None:
        self.taxonomy = taxonomy
        if model == "auto":
            model = SenseModel.load(taxonomy.sense.model) if taxonomy.sense else None
        self.model = model
        sensed = [t.id for t in taxonomy.topics if t.sensed]
        if model is not None and (
            model.taxonomy_version != taxonomy.version or sorted(model.topics) != sorted(sensed)
        ):
            raise ConfigError(
                f"sense model {model.version} was trained for taxonomy {model.taxonomy_version} "
                f"(topics {sorted(model.topics)}), not {taxonomy.version} (topics {sorted(sensed)}): "
                "run `wirefeed train-tags`",
                path=str(taxonomy.sense.model) if taxonomy.sense else taxonomy.source,
            )
        self.version = f"{taxonomy.version}+sense.{model.version}" if model else taxonomy.version
        settings = taxonomy.sense
        self._classes = settings.classes if settings else ()
        self._class_words = dict(self._classes)
        self._class_names = tuple(name for name, _ in self._classes)
        self._class_union = frozenset().union(*self._class_words.values())
        self._class_of: dict[str, tuple[str, ...]] = {}  # word -> the classes it belongs to
        for name, members in self._classes:
            for member in members:
                self._class_of[member] = (*self._class_of.get(member, ()), name)
        self._vocabulary: dict[bytes, str] | None = None  # the words the model or a class knows, by bytes
        if model is not None:
            known = {w for m in model.topics.values() for w in m.words}
            known.update(*(members for _, members in self._classes))
            self._vocabulary = {w.encode("latin-1"): w for w in sorted(known)}
        self._known: _accel.Vocabulary | None = None  # the same lookup in C
        if compiled and _accel is not None and self._vocabulary:
            self._known = _accel.Vocabulary(list(self._vocabulary), list(self._vocabulary.values()))
        topic_ids = sorted(t.id for t in taxonomy.topics)
        rank = {topic_id: i for i, topic_id in enumerate(topic_ids)}
        self._topic_ids = tuple(topic_ids)
        # ranks of the topics the sense model decides (none without a model)
        self._decided = frozenset(rank[t] for t in sensed) if model else frozenset()
        # term ids follow (topic, term) order: sorting ids sorts hits by topic, then by term
        ordered = sorted(((topic.id, term.name), term) for topic in taxonomy.topics for term in topic.terms)
        self._terms: tuple[tuple[str, str], ...] = tuple(pair for pair, _ in ordered)
        self._ranks: tuple[int, ...] = tuple(rank[topic_id] for (topic_id, _), _ in ordered)
        blocking = {topic.id for topic in taxonomy.topics if topic.blockers}
        overlapping = _overlapping_forms(taxonomy)
        # automaton word -> (form length, terms it is a form of (with no check, to check), topics it blocks,
        # mentions, context sets)
        plain: dict[str, list[int]] = {}
        checked: dict[str, list[_Checked]] = {}
        blockers: dict[str, list[int]] = {}
        mentions: dict[str, list[_Mention]] = {}
        contexts: dict[str, list[int]] = {}
        lengths: dict[str, int] = {}
        set_ids: dict[tuple[str, ...], int] = {}  # one id per distinct phrase set (YAML anchors share one)

        def word(key: str, *, suffix: bool = False) -> str:
            lengths[w := f"{key} " if suffix else f" {key} "] = len(key)
            return w

        def context_id(phrases: tuple[str, ...]) -> int:
            if not phrases:
                return _NO_CONTEXT
            if phrases not in set_ids:
                set_ids[phrases] = len(set_ids)
                for phrase in phrases:
                    contexts.setdefault(word(phrase), []).append(set_ids[phrases])
            return set_ids[phrases]

        # a dismissal word near a mention, in its sentence, dismisses it. Dismissal words are common ("not",
        # "no"), so they have an automaton of their own, run only around the mentions of a candidate story
        # (compiled, its values the phrase lengths, or else the ahocorasick_rs fallback: one of them is built)
        self._dismissal_scanner: Automaton | None = None
        self._dismissal: ahocorasick_rs.BytesAhoCorasick | None = None
        self._dismissal_lengths: tuple[int, ...] = ()  # characters of each dismissal phrase
        self._dismissal_keys: tuple[str, ...] = ()  # the compiled dismissal scan's phrases, in its key order
        self._window = (0, 0)  # words before and after a mention that a dismissal phrase may be
        self._reach = 0  # characters around a mention where one may be
        if settings and settings.dismissal:
            self._dismissal_lengths = tuple(map(len, settings.dismissal))
            if compiled and COMPILED is not None:
                phrases = dict.fromkeys(settings.dismissal)  # a repeated phrase finds the same spots
                self._dismissal_scanner = COMPILED(
                    [f" {phrase} ".encode("latin-1") for phrase in phrases],
                    [len(phrase) for phrase in phrases],
                    ASCII_LOWER_TO_SPACE,
                )
                self._dismissal_keys = tuple(phrases)
            else:
                self._dismissal = ahocorasick_rs.BytesAhoCorasick(
                    [f" {phrase} ".encode("latin-1") for phrase in settings.dismissal]
                )
            self._window = settings.window
            self._reach = max(settings.window) * WORDS_CHARS + max(map(len, settings.dismissal)) + 2
        for tid, ((topic_id, _), term) in enumerate(ordered):
            rule = term.rule
            checks: _Rule | None = None
            if rule:  # an `unless` phrase near drops the hit, then a `require` phrase must be near
                pairs = ((context_id(rule.unless), False), (context_id(rule.require), True))
                checks = (tuple(p for p in pairs if p[0] != _NO_CONTEXT), rule.before, rule.after)
            for key in term.keys:
                if topic_id in sensed:
                    mentions.setdefault(word(key), []).append(
                        (rank[topic_id], term.name, term.exact_forms, -1)
                    )
                # 2: its hits wait for the overlap rule; 1: they wait only when a blocking phrase matched
                wait = 2 if (topic_id, key) in overlapping else 1 if topic_id in blocking else 0
                if rule is None and term.exact_forms is None and not wait:
                    plain.setdefault(word(key), []).append(tid)  # counts wherever it matches
                    continue
                checked.setdefault(word(key), []).append(
                    (tid, rank[topic_id], wait, term.exact_forms, checks)
                )
        self._candidate_names = frozenset(
            (rank[topic.id], candidate.name)
            for topic in taxonomy.topics
            for candidate in topic.candidates or ()
        )
        for topic in taxonomy.topics:
            for blocker in topic.blockers:
                blockers.setdefault(word(blocker), []).append(rank[topic.id])
            for candidate in topic.candidates or ():
                gate = context_id(candidate.in_story)
                for key in candidate.keys:
                    mention = (rank[topic.id], candidate.name, candidate.exact_forms, gate)
                    mentions.setdefault(word(key, suffix=candidate.suffix), []).append(mention)
        self._longest = max(lengths.values())
        values: list[_Value] = []
        for w, n in lengths.items():
            work = (
                tuple(plain.get(w, ())),
                tuple(checked.get(w, ())),
                tuple(blockers.get(w, ())),
                tuple(mentions.get(w, ())),
            )
            values.append((n, tuple(contexts.get(w, ())), work if any(work) else ()))
        self._keys = tuple(lengths)  # " form ", or "form " for a suffix form
        self._values: tuple[_Value, ...] = tuple(values)
        self._whole_word = tuple(w.startswith(" ") for w in lengths)
        # The compiled scan reads the case-kept story (folding each byte as prepare() does) and needs no
        # whole-word check: its keys keep their leading space. The fallback, built only without it, searches
        # each key without its leading space (a DFA runs fastest on keys that start with a letter); a match
        # of a whole-word key counts only after a space.
        self._scanner: Automaton | None = None
        self._automaton: ahocorasick_rs.BytesAhoCorasick | None = None
        if compiled and COMPILED is not None:
            self._scanner = COMPILED([w.encode("latin-1") for w in lengths], values, ASCII_LOWER_TO_SPACE)
        else:
            self._automaton = ahocorasick_rs.BytesAhoCorasick(
                [w.lstrip(" ").encode("latin-1") for w in lengths],
                implementation=ahocorasick_rs.Implementation.DFA,
            )
        self.compiled = self._scanner is not None  # whether the compiled parts run
        # tag() whole in C (pipeline/tagging/_accel.c, TagCore) where the extensions were built
        self._core = self._build_core() if self._scanner is not None else None
        log.debug("tagger built: %d topics, %d automaton keys", len(taxonomy.topics), len(values))

    def tag(self, title: str, body: str) -> tuple[list[str], list[dict[str, Any]]]:
        """Return (sorted topic ids, hits); each hit is {"topic", "term", "count", "in_title"}.

        Hits are ordered by topic. For a topic decided by its rules: by count (highest first), then by term.
        For a topic decided by the sense model: its mentions (terms and candidates) by count, then its
        strongest word features as "sense:<word>" (how often the word occurs), strongest first.
        """
        if self._core is not None:  # the same in C
            return self._core.tag(title, body)
        scan = self._scan(title, body)
        if scan is None or not (scan.kept or scan.found):
            return [], []
        verdicts = self._verdicts(scan, explain=False) if scan.found and self._decided else {}
        return self._result(scan, verdicts)

    def explain(self, title: str, body: str) -> Explanation:
        """tag() with the reasons: every verdict of the sense model (all contributions, strongest first)
        and, for each topic not tagged, the term forms that matched but failed their rules."""
        scan = self._scan(title, body)
        if scan is None:
            return Explanation([], [], {}, {})
        verdicts = self._verdicts(scan, explain=True) if scan.found and self._decided else {}
        topics, hits = self._result(scan, verdicts)
        near: dict[str, list[str]] = {}
        kept = set(scan.kept)
        for _, (_, _, work) in scan.matches:
            for tid, *_ in work[1] if work else ():
                topic, term = self._terms[tid]
                if tid not in kept and topic not in topics and term not in near.get(topic, []):
                    near.setdefault(topic, []).append(term)
        return Explanation(topics, hits, {self._topic_ids[r]: v for r, v in verdicts.items()}, near)

    def sense_inputs(self, title: str, body: str) -> dict[str, SenseInput]:
        """What the sense model sees of a story, per sensed topic it mentions (the trainer's features)."""
        scan = self._scan(title, body)
        if scan is None or not scan.found:
            return {}
        return {self._topic_ids[r]: inp for r, inp in self._inputs(scan).items()}

    def tag_story(self, story: Story, packed: bool = False) -> Story:
        """Set topics, topic_hits and taxonomy_version on `story` (in place) and return it.

        Uses the title and the body, or the summary when the body is empty. taxonomy_version is the
        taxonomy's version, plus "+sense.<model version>" when a sense model decides some topics.
        `packed`: for a story bound for parquet.to_table and nothing else, its topic_hits may be packed
        (see parquet.PackedHits: one tuple instead of a dict a hit, which the compiled tagger gives).
        """
        body = story.get("body") or story.get("summary") or ""
        core = self._core  # tag() in C, called directly: one Python call less per story
        hits: list[dict[str, Any]] | tuple[Any, ...]
        if core is None:
            topics, hits = self.tag(story.get("title") or "", body)
        else:
            topics, hits = core.tag(story.get("title") or "", body, packed)
        story["topics"] = topics
        story["topic_hits"] = hits
        story["taxonomy_version"] = self.version
        return story

    def _build_core(self) -> _accel.TagCore | None:
        """The compiled tag(), when it was built and can give what the Python path gives. Its scan finds the
        dismissal phrases too: their " phrase " keys follow the tagger's own."""
        if COMPILED is None or _accel is None or not self._core_applies():
            return None
        keys = [w.encode("latin-1") for w in self._keys]
        own = set(keys)
        phrases = {f" {p} ".encode("latin-1"): len(p) for p in self._dismissal_keys}
        keys += [p for p in phrases if p not in own]
        # and every vocabulary word as " word ", so the sense model's words need no second pass
        vocabulary = enumerate(self._vocabulary or ())
        words = {b" %s " % w: v for v, w in vocabulary if w and not _SEPARATOR_BYTES.intersection(w)}
        own = set(keys)
        keys += [w for w in words if w not in own]
        scanner = COMPILED(keys, [None] * len(keys), ASCII_LOWER_TO_SPACE)
        tables = self._core_tables()
        tables["dismissal_len"] = [phrases.get(k, -1) for k in keys]
        tables["vocab_key"] = [words.get(k, -1) for k in keys]
        return _accel.TagCore(scanner, self._known, tables)

    def _core_applies(self) -> bool:
        """Whether the compiled tag() can give exactly what the Python path gives: a model with a vocabulary
        in C, and no positive word "class" or "cclass" (_sense_hits would read it as a class feature)."""
        model = self.model
        if model is None:
            return True
        if self._known is None:
            return False
        return not any(m.words.get(w, 0.0) > 0 for m in model.topics.values() for w in ("class", "cclass"))

    def _core_tables(self) -> dict[str, Any]:
        """The tagger's tables flattened for TagCore (pipeline/tagging/_accel.c): per automaton key (in the
        scanner's order) its context sets, terms, checks, blocked topics and mentions as offset/value lists;
        names by sorted name; per topic rank its model's weights (zero for topics the model does not decide)
        resolved per name, class, word and form; the near-word cues as (rank, word, weight)."""
        model, values = self.model, self._values
        topic_ids, ranks = self._topic_ids, len(self._topic_ids)
        names = sorted({name for _, name in self._terms} | {m[1] for v in values if v[2] for m in v[2][3]})
        name_id = {name: i for i, name in enumerate(names)}
        class_names = self._class_names
        vocabulary = list(self._vocabulary.values()) if self._vocabulary else []
        voc_id = {w: i for i, w in enumerate(vocabulary)}
        exact_ids: dict[frozenset[str], int] = {}
        rule_ids: dict[_Rule, int] = {}
        form_ids: dict[str, int] = {}
        t: dict[str, Any] = {k: [] for k in ("key_len", "ctx", "plain", "blk", "own", "exact_forms")}
        for k in ("ctx", "plain", "chk", "blk", "men"):
            t[f"{k}_off"] = [0]
        for k in ("tid", "rank", "wait", "exact", "rule"):
            t[f"chk_{k}"] = []
        for k in ("rank", "name", "exact", "gate", "cand", "form", "formw"):
            t[f"men_{k}"] = []
        t["own_off"], t["exact_off"] = [0], [0]
        for k in ("before", "after", "set", "wanted"):
            t[f"rule_{k}"] = []
        t["rule_off"] = [0]

        def exact_id(forms: frozenset[str] | None) -> int:
            if forms is None:
                return -1
            if forms not in exact_ids:
                exact_ids[forms] = len(exact_ids)
                encodable = [f.encode("latin-1") for f in sorted(forms) if f.isascii() or max(f) <= "\xff"]
                t["exact_forms"].extend(encodable)
                t["exact_off"].append(len(t["exact_forms"]))
            return exact_ids[forms]

        def rule_id(rule: _Rule | None) -> int:
            if rule is None:
                return -1
            if rule not in rule_ids:
                rule_ids[rule] = len(rule_ids)
                checks, before, after = rule
                t["rule_before"].append(before)
                t["rule_after"].append(after)
                t["rule_set"].extend(set_id for set_id, _ in checks)
                t["rule_wanted"].extend(int(wanted) for _, wanted in checks)
                t["rule_off"].append(len(t["rule_set"]))
            return rule_ids[rule]

        def form_id(form: str) -> int:
            if form not in form_ids:
                form_ids[form] = len(form_ids)
                t["own"].extend(voc_id[w] for w in form.split() if w in voc_id)
                t["own_off"].append(len(t["own"]))
            return form_ids[form]

        topic_models = [
            model.topics[topic_ids[r]] if model is not None and r in self._decided else None
            for r in range(ranks)
        ]

        def cue(r: int, feature: str) -> float:
            m = topic_models[r]
            return m.cues.get(feature, 0.0) if m is not None else 0.0

        for key, (n, contexts, work) in zip(self._keys, values, strict=True):
            t["key_len"].append(n)
            t["ctx"].extend(contexts)
            plain, checked, blocks, mentions = work or ((), (), (), ())
            t["plain"].extend(plain)
            for tid, rank, wait, exact_forms, rule in checked:
                for k, v in (("tid", tid), ("rank", rank), ("wait", wait)):
                    t[f"chk_{k}"].append(v)
                t["chk_exact"].append(exact_id(exact_forms))
                t["chk_rule"].append(rule_id(rule))
            t["blk"].extend(blocks)
            form = key.strip(" ")
            for rank, name, exact_forms, gate in mentions:
                t["men_rank"].append(rank)
                t["men_name"].append(name_id[name])
                t["men_exact"].append(exact_id(exact_forms))
                t["men_gate"].append(gate)
                t["men_cand"].append(int((rank, name) in self._candidate_names))
                t["men_form"].append(form_id(form))
                t["men_formw"].append(cue(rank, f"form:{form}"))
            for k, items in (("ctx", "ctx"), ("plain", "plain"), ("chk", "chk_tid"), ("blk", "blk")):
                t[f"{k}_off"].append(len(t[items]))
            t["men_off"].append(len(t["men_rank"]))
        order = {
            name: i
            for i, name in enumerate(
                sorted(
                    {*vocabulary, *(f"class:{c}" for c in class_names), *(f"cclass:{c}" for c in class_names)}
                )
            )
        }
        class_index = {c: i for i, c in enumerate(class_names)}
        t["voc_class"], t["voc_class_off"] = [], [0]
        for w in vocabulary:
            t["voc_class"].extend(class_index[c] for c in self._class_of.get(w, ()))
            t["voc_class_off"].append(len(t["voc_class"]))
        near = [
            (r, feature[len("near:") :], weight)
            for r, m in enumerate(topic_models)
            if m is not None
            for feature, weight in m.cues.items()
            if feature.startswith("near:") and max(feature, default="") <= "\xff"
        ]
        t.update(
            fold=ASCII_LOWER_TO_SPACE,
            keep=ASCII_TO_SPACE,
            longest=self._longest,
            before=self._window[0],
            after=self._window[1],
            reach=self._reach,
            words_chars=WORDS_CHARS,
            near=NEAR,
            near_words=NEAR_WORDS,
            near_chars=NEAR_CHARS,
            lead_chars=LEAD_CHARS,
            sets=1 + max((max(v[1], default=-1) for v in values), default=-1),
            forms=len(form_ids),
            exact_sets=len(exact_ids),
            rules=len(rule_ids),
            topic_ids=topic_ids,
            names=names,
            term_names=[name for _, name in self._terms],
            class_terms=[f"{SENSE_PREFIX}class:{c}" for c in class_names],
            term_rank=self._ranks,
            term_name=[name_id[name] for _, name in self._terms],
            decided=[int(r in self._decided) for r in range(ranks)],
            bias=[m.bias if m else 0.0 for m in topic_models],
            threshold=[m.threshold if m else 0.0 for m in topic_models],
            class_order=[order[f"class:{c}"] for c in class_names],
            cclass_order=[order[f"cclass:{c}"] for c in class_names],
            voc_order=[order[w] for w in vocabulary],
            voc_micro=[m.micro_words.get(w, 0) if m else 0 for m in topic_models for w in vocabulary],
            voc_w=[m.words.get(w, 0.0) if m else 0.0 for m in topic_models for w in vocabulary],
            near_rank=[r for r, _, _ in near],
            near_word=[w.encode("latin-1") for _, w, _ in near],
            near_weight=[w for _, _, w in near],
            keys=len(self._keys),
        )
        for field, feature in (
            ("terms", "terms"),
            ("candidates", "candidates"),
            ("length", "length"),
            ("dismissed", "dismissed"),
            ("all_dismissed", "all_dismissed"),
            ("rule_any", "rule:any"),
            ("rule_title", "rule:title"),
            ("once", "once"),
            ("late", "late"),
        ):
            t[f"w_{field}"] = [cue(r, feature) for r in range(ranks)]
        for field, prefix in (("class", "class:"), ("cclass", "cclass:")):
            t[f"w_{field}"] = [cue(r, prefix + c) for r in range(ranks) for c in class_names]
        for field in ("title", "proper", "unruled"):
            t[f"w_{field}"] = [cue(r, f"{field}:{name}") for r in range(ranks) for name in names]
        return t

    def _scan(self, title: str, body: str) -> _Scan | None:
        raw, sep = prepare_raw(title, body)
        low: bytes | None = None
        if self._scanner is not None:
            matches: list[tuple[int, _Value]] = self._scanner.scan(raw)
        else:
            low = raw.translate(ASCII_LOWER_TO_SPACE)
            matches = self._matches(low)
        if self._idle(matches):
            return None
        if low is None:
            low = raw.translate(ASCII_LOWER_TO_SPACE)
        norm = low.decode("latin-1")
        # blocking phrases are rare: hits wait for them only when one matched
        found = self._kept(matches, raw, norm, sep, 1) or self._kept(matches, raw, norm, sep, 0)
        assert found is not None  # with patience 0, _kept never gives up
        return _Scan(raw, low, norm, sep, matches, *found)

    @staticmethod
    def _idle(matches: list[tuple[int, _Value]]) -> bool:
        """Whether these matches can tag or explain nothing: context phrases, blocking phrases and mentions
        of sensed topics whose story gate (a context phrase set) matched nowhere ("rates" in a story with no
        trade word), and no term form. Most stories end here, before normalizing their text."""
        gates: set[int] | None = None
        for _, (_, _, work) in matches:
            if not work:
                continue
            if work[0] or work[1]:
                return False
            for *_, gate in work[3]:
                if gate == _NO_CONTEXT:
                    return False
                if gates is None:
                    gates = set(chain.from_iterable(map(_SECOND, map(_SECOND, matches))))
                if gate in gates:
                    return False
        return True

    def _matches(self, text: bytes) -> list[tuple[int, _Value]]:
        """Every key's matches in the normalized `text`, overlapping ones included, as (offset of the key's
        last character (its closing space), value), ordered by that offset, the longest key first."""
        values, whole_word, automaton = self._values, self._whole_word, self._automaton
        assert automaton is not None  # the fallback's scan: built whenever the compiled one is not
        return [
            (end - 1, values[i])
            for i, start, end in automaton.find_matches_as_indexes(text, overlapping=True)
            if text[start - 1] == 32 or not whole_word[i]
        ]

    def _result(self, scan: _Scan, verdicts: dict[int, Verdict]) -> tuple[list[str], list[dict[str, Any]]]:
        kept, decided = scan.kept, self._decided
        ranks, terms, topic_ids = self._ranks, self._terms, self._topic_ids
        rows: list[tuple[int, int, int]] = []
        if kept:
            kept.sort()
            tid, count = kept[0], 0
            for other in kept:
                if other == tid:
                    count += 1
                else:
                    rows.append((ranks[tid], -count, tid))
                    tid, count = other, 1
            rows.append((ranks[tid], -count, tid))
            if decided:
                rows = [row for row in rows if row[0] not in decided]
            rows.sort()
        titled = scan.titled
        topics: list[str] = []
        hits: list[dict[str, Any]] = []
        tagged = sorted((r, v) for r, v in verdicts.items() if v.tagged)
        for rank, _ in tagged:
            rows.append((rank, 0, -1))  # the sensed topic's place among the rule topics
        title_words: frozenset[str] = frozenset()
        if tagged:
            rows.sort()
            # the title's words between two spaces (its first piece is "", its last the separator)
            title_words = frozenset(scan.norm[: scan.sep + 1].split(" "))
        for rank, neg, tid in rows:
            if tid < 0:
                topic = topic_ids[rank]
                topics.append(topic)
                hits.extend(self._sense_hits(topic, verdicts[rank], scan.norm, title_words))
                continue
            topic, name = terms[tid]
            if not topics or topics[-1] != topic:
                topics.append(topic)
            hits.append({"topic": topic, "term": name, "count": -neg, "in_title": tid in titled})
        return topics, hits

    def _sense_hits(
        self, topic: str, verdict: Verdict, norm: str, title_words: frozenset[str]
    ) -> list[dict[str, Any]]:
        """Evidence of a sensed tag: its mentions by name (most first), then its strongest positive
        features other than the mentions: words ("sense:imports", how often it occurs) and word classes
        ("sense:class:trade", how many of its words occur)."""
        counts: dict[str, list[int]] = {}
        for m in verdict.inp.mentions:
            c = counts.setdefault(m.name, [0, 0])
            c[0] += 1
            c[1] |= m.in_title
        hits = [
            {"topic": topic, "term": name, "count": n, "in_title": bool(t)}
            for name, (n, t) in sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ]
        for feature, _ in verdict.evidence:
            kind, _, name = feature.partition(":")
            if kind in ("class", "cclass"):
                members = self._class_words[name].intersection(verdict.inp.words)
                count, in_title = len(members), not title_words.isdisjoint(members)
                feature = f"class:{name}"
            else:
                count, in_title = norm.count(f" {feature} "), feature in title_words
            hits.append(
                {"topic": topic, "term": SENSE_PREFIX + feature, "count": max(1, count), "in_title": in_title}
            )
        return hits

    def _verdicts(self, scan: _Scan, *, explain: bool) -> dict[int, Verdict]:
        assert self.model is not None
        model = self.model
        return {r: model.judge(inp, explain=explain) for r, inp in self._inputs(scan).items()}

    def _inputs(self, scan: _Scan) -> dict[int, SenseInput]:
        """The sense model's input for each sensed topic the story mentions: mentions that pass their case
        rule, blocking phrases and story gate, overlaps resolved (the longest counts), each judged dismissed
        or not."""
        raw, norm, sep, matches, blocked = scan.raw, scan.norm, scan.sep, scan.matches, scan.blocked
        spans: dict[int, list[tuple[int, int, str]]] = {}
        present: set[int] | None = None  # the context phrase sets with a phrase in the story
        for i, forms in scan.found:
            end, (n, _, _) = matches[i]
            start = end - n
            for rank, name, exact_forms, gate in forms:
                if (
                    exact_forms is not None
                    and raw[start:end].translate(ASCII_TO_SPACE).decode("latin-1") not in exact_forms
                ):
                    continue
                if blocked and any(b < end and start < e and rank in ranks for b, e, ranks in blocked):
                    continue  # another sense of the word: "fuel duty", "water tariff", "magnet school"
                if gate != _NO_CONTEXT:
                    if present is None:
                        present = set(chain.from_iterable(map(_SECOND, map(_SECOND, matches))))
                    if gate not in present:
                        continue
                spans.setdefault(rank, []).append((start, -end, name))
        if not spans:
            return {}
        spots = self._dismissal_spots(scan.low, spans)
        rule_hits: dict[int, dict[str, tuple[int, bool]]] = {rank: {} for rank in spans}
        ranks, terms, titled = self._ranks, self._terms, scan.titled
        for tid in scan.kept:
            by_term = rule_hits.get(ranks[tid])
            if by_term is not None:
                term = terms[tid][1]
                n, in_title = by_term.get(term, (0, False))
                by_term[term] = (n + 1, in_title or tid in titled)
        # the story's distinct words the model or a class knows (every word without a model: the trainer's)
        vocabulary = self._vocabulary
        if vocabulary is None:
            words = frozenset(norm.split())
        elif self._known is not None:  # the same in C
            words = self._known.known(scan.low)
        else:  # the words of norm.split(), found as bytes (cheaper to split and hash), then named
            words = frozenset(map(vocabulary.__getitem__, vocabulary.keys() & _words_of(scan.low)))
        in_classes = Counter(chain.from_iterable(map(self._class_of.__getitem__, words & self._class_union)))
        classes = {name: in_classes[name] for name in self._class_names if name in in_classes}
        candidates, length = self._candidate_names, len(norm)
        out: dict[int, SenseInput] = {}
        for rank, found in spans.items():
            found.sort()
            covered = -1
            mentions = []
            near: list[str] = []
            for start, neg_end, name in found:
                if start < covered:
                    continue
                covered = end = -neg_end
                gone = bool(spots) and self._dismissed(spots, raw, norm, sep, start, end)
                if not gone and len(near) < NEAR_WORDS:
                    near += norm[max(0, start - NEAR_CHARS) : start].rsplit(None, NEAR)[-NEAR:]
                    near += norm[end : end + NEAR_CHARS].split(None, NEAR)[:NEAR]
                proper = start > sep and 65 <= raw[start] <= 90 and _inside_sentence(raw, start)
                form = norm[start:end]
                mentions.append(
                    Mention(name, start, end, start < sep, gone, (rank, name) in candidates, form, proper)
                )
            # the words of its mentions are cues of their own (affirmed or dismissed), not also word
            # features: "made no reference to tariffs" must not count the word "tariffs"
            own = words.intersection(chain.from_iterable(map(str.split, {m.form for m in mentions})))
            out[rank] = SenseInput(
                self._topic_ids[rank],
                tuple(mentions),
                rule_hits[rank],
                words - own if own else words,
                classes,
                _near_words(near),
                length,
                sep + LEAD_CHARS,
            )
        return out

    def _dismissal_spots(
        self, text: bytes, spans: dict[int, list[tuple[int, int, str]]]
    ) -> list[tuple[int, int]]:
        """(start, end) of the dismissal phrases within reach of a mention, by start: the dismissal
        automaton runs on the stretches of text around the mentions only."""
        if not self._dismissal_lengths:
            return []
        dismissal, lengths, scanner = self._dismissal, self._dismissal_lengths, self._dismissal_scanner
        reach = self._reach
        size = len(text)
        around = [
            (start - reach if start > reach else 0, min(size, reach - neg_end))
            for found in spans.values()
            for start, neg_end, _ in found
        ]
        around.sort()
        spots: list[tuple[int, int]] = []
        low, high = around[0]
        for a, b in [*around[1:], (len(text) + 1, 0)]:
            if a > high:  # a stretch ends: scan it
                if scanner is not None:  # (offset of the closing space, phrase length)
                    spots.extend((at - n, at) for at, n in scanner.scan(text, low, high))
                else:  # a match of " phrase " starts at its leading space and ends after its closing one
                    assert dismissal is not None  # built whenever the compiled scan is not
                    spots.extend(
                        (low + start + 1, low + start + 1 + lengths[i])
                        for i, start, _ in dismissal.find_matches_as_indexes(text[low:high], overlapping=True)
                    )
                low, high = a, b
            elif b > high:
                high = b
        spots.sort()
        return spots

    def _dismissed(
        self, spots: list[tuple[int, int]], raw: bytes, norm: str, sep: int, start: int, end: int
    ) -> bool:
        """Whether a dismissal phrase (`spots`, sorted) ends within `before` words before the mention
        norm[start:end] or starts within `after` words after it, in its field and its sentence."""
        before, after = self._window
        in_title = start < sep
        first = bisect_left(spots, (start - WORDS_CHARS * before - self._longest,))
        for k in range(first, len(spots)):  # by index: a slice would copy the rest of spots per mention
            s_start, s_end = spots[k]
            if s_start > end + WORDS_CHARS * after:
                break
            if (s_start < sep) is not in_title:
                continue
            if s_end <= start:  # before the mention
                if len(norm[s_end:start].split()) < before and not _SENTENCE_END.search(
                    raw, s_end - 1, start
                ):
                    return True
            elif (  # after it
                s_start >= end
                and len(norm[end:s_start].split()) < after
                and not _SENTENCE_END.search(raw, end - 1, s_start)
            ):
                return True
        return False

    def _kept(
        self, matches: list[tuple[int, _Value]], raw: bytes, norm: str, sep: int, patience: int
    ) -> tuple[list[int], set[int], _Found, list[tuple[int, int, tuple[int, ...]]]] | None:
        """Term ids of the hits among `matches` that count (with repeats), the set of those in the title,
        where mention forms of sensed topics matched and the blocking phrases that matched. Hits that wait
        more than `patience` go through the blocking and overlap rules; None when a blocking phrase matched
        while hits it may block did not wait."""
        split = bisect_left(matches, (sep,))  # matches[:split] are in the title
        titled = {tid for _, (_, _, work) in matches[:split] if work for tid in work[0]}
        kept: list[int] = []
        found: _Found = []
        later: list[tuple[int, int, int, int]] = []  # (topic rank, start, -end, term id) of waiting hits
        blocked: list[tuple[int, int, tuple[int, ...]]] = []  # (start, end, topic ranks) of blocking phrases
        longest = self._longest
        for i, (end, (n, _, work)) in enumerate(matches):
            if not work:
                continue  # a context phrase only
            plain, checked, blocks, mentions = work
            if plain:
                kept.extend(plain)
            if mentions:
                found.append((i, mentions))
            if checked:
                start = end - n  # norm[start:end] is the matched form, between two spaces
                for tid, rank, wait, exact_forms, rule in checked:
                    if (
                        exact_forms is not None
                        and raw[start:end].translate(ASCII_TO_SPACE).decode("latin-1") not in exact_forms
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
        return kept, titled, found, blocked


@cache
def default_tagger() -> Tagger:
    """The tagger for schemas/topics.yaml and its sense model, built once per process."""
    return Tagger(Taxonomy.load())


def _words_of(low: bytes) -> list[bytes]:
    """The words of normalized bytes as str.split() finds them in its latin-1 text, which also splits at
    bytes 0x85 and 0xA0 (parts of UTF-8 characters; every other separator already is a space)."""
    if b"\x85" in low or b"\xa0" in low:
        low = low.translate(_LATIN1_SPACES)
    return low.split()


def _near_words(near: list[str]) -> tuple[str, ...]:
    """The distinct words next to the mentions, in order, without the title/body separator."""
    distinct = dict.fromkeys(near)
    distinct.pop(SEPARATOR, None)
    return tuple(distinct)


def _inside_sentence(raw: bytes, start: int) -> bool:
    """Whether the word at raw[start] is inside a sentence, not its first word: a capital there makes it a
    name ("Tariff Road", "the Tik Tok Club")."""
    before = raw[max(0, start - 4) : start].rstrip()
    return bool(before) and before[-1:] not in b".!?:\"'\xff\n"


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
    bounds: tuple[int, int] | None = None,
) -> bool:
    """Whether the hit norm[start:end] (matches[i]) passes a context rule: for each (set, wanted), whether a
    phrase of the set lies within `before` words left or `after` words right of it in its field (title
    before `sep`, body after), counting the words strictly between them (at most WORDS_CHARS characters a
    word). Matches are ordered by end offset; no form is longer than `longest` characters. `bounds`, when
    given, narrows where the phrases may be (a sentence)."""
    checks, before, after = rule
    first = start - WORDS_CHARS * before  # a phrase before ends at or after `first`
    last = end + WORDS_CHARS * after  # a phrase after starts at or before `last`
    if end < sep:  # the title
        if last > sep:
            last = sep
    elif first < sep:
        first = sep
    if bounds is not None:
        first, last = max(first, bounds[0]), min(last, bounds[1])
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
        # forms that overlap share a word: only pairs that share one are checked (the checks of all pairs
        # cost most of a tagger's build)
        having: dict[str, list[str]] = {}
        for key, words in forms.items():
            for w in set(words):
                having.setdefault(w, []).append(key)
        for a, a_words in forms.items():
            others = {b: None for w in a_words for b in having[w]}
            for b in others:
                if (topic.id, a) in out and (topic.id, b) in out:
                    continue  # nothing to add
                if _can_overlap(a_words, forms[b], same=a == b):
                    out.update({(topic.id, a), (topic.id, b)})
    return out


def _can_overlap(a: list[str], b: list[str], *, same: bool) -> bool:
    """Whether word sequences a and b can share a word when both occur in a text (b placed at any offset
    relative to a; a form does not overlap itself at offset 0)."""
    for offset in range(-len(b) + 1, len(a)):
        if same and offset == 0:
            continue
        if offset >= 0:  # b starts at a[offset]: the words they share are equal
            m = min(len(a) - offset, len(b))
            if a[offset : offset + m] == b[:m]:
                return True
        else:  # a starts at b[-offset]
            m = min(len(a), len(b) + offset)
            if a[:m] == b[-offset : m - offset]:
                return True
    return False
