# ruff: noqa: E501  (literal feed fragments read best one per line)
"""Seeded generators of benchmark inputs (nothing is committed: every run writes them anew).

- snapshot_archive: RSS 2.0 snapshot files `YYYY/MM/DD/feed-NNN.xml`, `items` items each, 2-4 KB HTML
  bodies (escaped or CDATA descriptions, some content:encoded), links with tracking parameters.
- jsonl_archive: JSON Lines exports `YYYY-MM-DD.jsonl` with their own field names and a mapping file.
- rss_feed: one RSS 2.0 document (the daily-run benchmark serves these over loopback HTTP).
- quirky_rss_feeds, quirky_atom_feeds, mutated_feeds: small feeds for the fast path's differential tests.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from html import escape
from itertools import accumulate
from pathlib import Path
from typing import Any

from bench.words import NEWS_WORDS, topic_terms

_ZIPF = list(accumulate(1 / rank for rank in range(1, len(NEWS_WORDS) + 1)))
_PEOPLE = ["Ana Ruiz", "Tom Becker", "Li Wei", "Sara Okafor", "J. Smith", "Marta Nowak", "Kenji Sato"]
_SECTIONS = ["World", "Business", "Markets", "Technology", "Politics", "Trade", "Energy"]
_TRACKING = ["", "", "?utm_source=rss&utm_medium=feed", "?ref=rss", "?id=42&utm_campaign=x"]
JSONL_MAPPING = {
    "headline": "title",
    "story_url": "url",
    "text": "body",
    "teaser": "summary",
    "byline": "authors",
    "first_published": "published",
    "section": "categories",
    "lang": "language",
    "uid": "guid",
}


class Writer:
    """Deterministic news-like text: Zipf-distributed common words plus taxonomy terms."""

    def __init__(self, seed: int, term_rate: float = 0.02) -> None:
        self.rng = random.Random(seed)
        self.terms = topic_terms()
        self.term_rate = term_rate
        self._pool: list[str] = []

    def words(self, n: int) -> list[str]:
        rng = self.rng
        out = rng.choices(NEWS_WORDS, cum_weights=_ZIPF, k=n)
        for i in range(n):
            if rng.random() < self.term_rate:
                out[i] = rng.choice(self.terms)
        return out

    def sentence(self, n: int = 18) -> str:
        return " ".join(self.words(n)).capitalize() + "."

    def pooled_sentence(self) -> str:
        """A sentence from a pool of 4,000 (new words for each would make the generator the bottleneck)."""
        if not self._pool:
            self._pool = [self.sentence() for _ in range(4000)]
        return self.rng.choice(self._pool)

    def title(self) -> str:
        words = self.words(8)
        words.insert(self.rng.randrange(9), self.rng.choice(self.terms))
        return " ".join(words).capitalize()

    def paragraphs(self, size: int) -> list[str]:
        out, length = [], 0
        while length < size:
            para = " ".join(self.pooled_sentence() for _ in range(self.rng.randint(2, 4)))
            out.append(para)
            length += len(para)
        return out

    def html_body(self, size: int) -> str:
        """Paragraphs with inline markup, links, entities and the odd list or figure."""
        rng = self.rng
        parts = []
        for para in self.paragraphs(size):
            words = para.split(" ")
            if rng.random() < 0.5:
                i = rng.randrange(len(words))
                words[i] = f"<b>{words[i]}</b>"
            if rng.random() < 0.3:
                i = rng.randrange(len(words))
                words[i] = f'<a href="https://example.com/topic/{i}?utm_source=feed">{words[i]}</a>'
            if rng.random() < 0.3:
                words.insert(rng.randrange(len(words)), "&amp; &#8220;quoted&#8221; &mdash;")
            parts.append(f"<p>{' '.join(words)}</p>")
        if rng.random() < 0.2:
            parts.append("<ul><li>" + "</li><li>".join(self.words(3)) + "</li></ul>")
        if rng.random() < 0.1:
            parts.insert(1, '<figure><img src="https://img.example.com/x.jpg" alt="x"><figcaption>'
                         f"{self.sentence(6)}</figcaption></figure>")  # fmt: skip
        return "".join(parts)


def _item_xml(w: Writer, feed: int, n: int, when: datetime, cdata: bool, encoded: bool) -> str:
    rng = w.rng
    body = w.html_body(rng.randint(2000, 3800))
    link = f"https://News.Example.com/{feed}/story-{n}{rng.choice(_TRACKING)}"
    desc = f"<![CDATA[{body}]]>" if cdata else escape(body, quote=False)
    parts = [
        f"<title>{escape(w.title(), quote=False)}</title>",
        f"<link>{escape(link)}</link>",
        f'<guid isPermaLink="false">urn:example:{feed}:{n}</guid>',
        f"<pubDate>{format_datetime(when)}</pubDate>",
        f"<dc:creator>{rng.choice(_PEOPLE)}</dc:creator>",
        f"<category>{rng.choice(_SECTIONS)}</category>",
    ]
    if encoded:
        parts.append(f"<description>{escape(w.sentence(), quote=False)}</description>")
        parts.append(f"<content:encoded><![CDATA[{body}]]></content:encoded>")
    else:
        parts.append(f"<description>{desc}</description>")
    return "<item>" + "".join(parts) + "</item>"


def rss_feed(w: Writer, feed: int, items: int, day: date, *, title: str | None = None) -> bytes:
    """One RSS 2.0 document of `items` items published on `day`."""
    rng = w.rng
    cdata, encoded = rng.random() < 0.5, rng.random() < 0.25
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    when = [start + timedelta(seconds=rng.randrange(86400)) for _ in range(items)]
    body = "".join(_item_xml(w, feed, n, when[n], cdata, encoded) for n in range(items))
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>{escape(title or f'Example Wire {feed}')}</title>"
        f"<link>https://news.example.com/{feed}/</link><description>Generated</description>"
        "<language>en-us</language>"
    )
    return (head + body + "</channel></rss>\n").encode("utf-8")


def snapshot_archive(root: Path, *, files: int = 200, items: int = 50, days: int = 4, seed: int = 9) -> int:
    """`files` snapshot files spread over `days` days from 2025-09-01; returns the number of items."""
    first = date(2025, 9, 1)
    w = Writer(seed)
    for i in range(files):
        day = first + timedelta(days=i % days)
        folder = root / f"{day:%Y/%m/%d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"feed-{i:03d}.xml").write_bytes(rss_feed(w, i, items, day))
    return files * items


def jsonl_archive(
    root: Path, *, stories: int, days: int, seed: int = 11, body_chars: tuple[int, int] = (1500, 3000)
) -> Path:
    """`stories` records in one `YYYY-MM-DD.jsonl` file per day; returns the mapping file's path."""
    root.mkdir(parents=True, exist_ok=True)
    w = Writer(seed)
    rng = w.rng
    first = date(2025, 9, 1)
    per_day = -(-stories // days)
    written = 0
    for d in range(days):
        day = first + timedelta(days=d)
        with (root / f"wire-{day.isoformat()}.jsonl").open("w", encoding="utf-8") as out:
            for _ in range(min(per_day, stories - written)):
                record: dict[str, Any] = {
                    "uid": f"w{written}",
                    "headline": w.title(),
                    "story_url": f"https://wire.example.com/{day:%Y/%m/%d}/{written}{rng.choice(_TRACKING)}",
                    "teaser": w.sentence(),
                    "text": "\n\n".join(w.paragraphs(rng.randint(*body_chars))),
                    "byline": [rng.choice(_PEOPLE)],
                    "first_published": f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
                    "section": [rng.choice(_SECTIONS)],
                    "lang": "en",
                }
                out.write(json.dumps(record) + "\n")
                written += 1
    mapping = root.parent / f"{root.name}-mapping.yaml"
    mapping.write_text("".join(f"{k}: {v}\n" for k, v in JSONL_MAPPING.items()), "utf-8")
    return mapping


def quirky_rss_feeds(seed: int, count: int) -> list[tuple[str, bytes, dict[str, Any]]]:
    """Small RSS 2.0 feeds mixing the shapes and quirks real feeds have (for the differential tests):
    entities and escaped markup in titles, relative and permalink links, odd dates, categories with
    domains, authors with e-mail addresses, language before/after items, foreign elements, mojibake."""
    rng = random.Random(seed)
    titles = ["Plain title", "AT&amp;T buys &lt;b&gt;chips&lt;/b&gt;", "Caf\u00e9 &#150; news",
              "Caf\u00c3\u00a9", "", "  spaced   title ", "&amp;lt;i&amp;gt;double&amp;lt;/i&amp;gt;",
              "Tariffs &lt;img src=x//",
              "1 &lt; 2 &amp; 3 &gt; 2", "Q&amp;A: rates", "<![CDATA[<b>cdata</b> title]]>"]  # fmt: skip
    links = ["https://ex.com/a?x=1&amp;y=2", "/relative/path", "", "  https://Ex.com/b#frag  ",
             "https://ex.com/c?utm_source=x&amp;amp;id=3", None]  # fmt: skip
    guids = [("https://ex.com/g/1", None), ("urn:x:1", "false"), ("rel/guid", None), (None, None),
             ("https://ex.com/g/2", "true")]  # fmt: skip
    bodies = ["&lt;p&gt;Para &lt;b&gt;one&lt;/b&gt;&lt;/p&gt;&lt;p&gt;two&lt;/p&gt;",
              "<![CDATA[<p>CDATA <a href='/x'>body</a></p><script>x()</script>]]>", "plain text body", "",
              None, "Body with &amp;amp; entity and &lt;br&gt; break"]  # fmt: skip
    dates = ["Mon, 01 Sep 2025 05:02:38 +0000", "2025-09-01T05:02:38Z", "yesterday",
             "Tue, 2 Sep 2025 1:2 EST", None, "31 Feb 2025"]  # fmt: skip
    cats = ["World", "<![CDATA[Markets]]>", "", "Caf\u00e9"]
    authors = ["Ana Ruiz", "ana@example.com (Ana Ruiz)", "", "J. Smith"]
    extras = ["<comments>https://ex.com/c</comments>", '<enclosure url="https://ex.com/a.mp3" length="1"/>',
              '<media:content url="https://ex.com/i.jpg"/>', "<foo:bar>x</foo:bar>",
              "<itunes:summary>s</itunes:summary>", '<source url="https://s.com/">S</source>']  # fmt: skip
    feeds = []
    for n in range(count):
        items = []
        for _ in range(rng.randint(1, 4)):
            parts = []
            title = rng.choice(titles)
            if rng.random() < 0.9:
                parts.append(f"<title>{title}</title>")
            link = rng.choice(links)
            if link is not None:
                parts.append(f"<link>{link}</link>")
            guid, permalink = rng.choice(guids)
            if guid is not None:
                attr = f' isPermaLink="{permalink}"' if permalink else ""
                parts.append(f"<guid{attr}>{guid}</guid>")
            body = rng.choice(bodies)
            if body is not None:
                parts.append(f"<description>{body}</description>")
            if rng.random() < 0.3:
                parts.insert(rng.randrange(len(parts) + 1), f"<content:encoded>{rng.choice(bodies[:3])}"
                             "</content:encoded>")  # fmt: skip
            date = rng.choice(dates)
            if date is not None:
                parts.append(f"<pubDate>{date}</pubDate>")
            if rng.random() < 0.2:
                parts.append(f"<dc:date>{rng.choice(dates[:2])}</dc:date>")
            for _ in range(rng.randint(0, 3)):
                domain = ' domain="d"' if rng.random() < 0.3 else ""
                parts.append(f"<category{domain}>{rng.choice(cats)}</category>")
            if rng.random() < 0.6:
                tag = rng.choice(["dc:creator", "author"])
                parts.append(f"<{tag}>{rng.choice(authors)}</{tag}>")
            if rng.random() < 0.15:
                parts.append(rng.choice(extras))
            rng.shuffle(parts)
            items.append(f"<item>{''.join(parts)}</item>")
        language = rng.choice(["<language>en-us</language>", "<language>en_US</language>", ""])
        head = [f"<title>{rng.choice(titles)}</title>", "<link>https://ex.com/</link>", language]
        if rng.random() < 0.3:
            head.append('<atom:link href="https://ex.com/rss" rel="self" type="application/rss+xml"/>')
        if rng.random() < 0.2:
            head.append(f"<managingEditor>{rng.choice(authors)}</managingEditor>")
        body = "".join(head + items) if rng.random() < 0.8 else "".join(items + head)
        doc = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom" '
            'xmlns:foo="urn:foo" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
            f"<channel>{body}</channel></rss>"
        )
        kwargs: dict[str, Any] = {}
        if rng.random() < 0.5:
            kwargs["feed_url"] = "https://ex.com/feeds/rss.xml"
        if rng.random() < 0.3:
            kwargs["content_type"] = rng.choice(["application/rss+xml; charset=utf-8", "text/xml"])
        feeds.append((f"quirky-{n}.xml", doc.encode("utf-8"), kwargs))
    return feeds


def quirky_atom_feeds(seed: int, count: int) -> list[tuple[str, bytes, dict[str, Any]]]:
    """Small Atom 1.0 feeds with the shapes and quirks real ones have (for the differential tests)."""
    rng = random.Random(seed)
    xhtml = "<div xmlns='http://www.w3.org/1999/xhtml'>x</div>"
    texts = [("text", "Plain &amp; simple"), ("html", "&lt;b&gt;Bold&lt;/b&gt; news"), (None, "No type"),
             ("html", "Caf\u00e9 &amp;amp; more"), ("text", ""), ("xhtml", xhtml),
             ("text", "  spaced  "), ("html", "<![CDATA[<p>cdata</p>]]>")]  # fmt: skip
    links = ['<link href="https://ex.com/a"/>', '<link rel="alternate" href="/rel/b"/>',
             '<link rel="enclosure" href="https://ex.com/x.mp3" type="audio/mpeg"/>',
             '<link rel="alternate" type="text/html" href="https://ex.com/c?x=1&amp;y=2"/>',
             '<link rel="self" href="https://ex.com/self"/>',
             '<link rel="alternate" type="application/pdf" href="/p"/>', ""]  # fmt: skip
    ids = [
        "<id>https://ex.com/id/1</id>",
        "<id>urn:uuid:1</id>",
        "<id>tag:ex.com,2025:1</id>",
        "<id>rel/2</id>",
        "",
    ]
    dates = ["2025-09-01T05:02:38Z", "2025-09-01T05:02:38+02:00", "bogus", "Mon, 01 Sep 2025 05:02:38 GMT"]
    people = ["<name>Ana Ruiz</name>", "<name>Ana</name><email>ana@ex.com</email>", "<email>x@ex.com</email>",
              "<name></name>", "<name>Li Wei</name><uri>https://ex.com/li</uri>"]  # fmt: skip
    feeds = []
    for n in range(count):
        entries = []
        for _ in range(rng.randint(1, 3)):
            parts = [rng.choice(ids), rng.choice(links)]
            kind, text = rng.choice(texts)
            parts.append(f"<title{f' type={chr(34)}{kind}{chr(34)}' if kind else ''}>{text}</title>")
            for name in ("summary", "content"):
                if rng.random() < 0.6:
                    kind, text = rng.choice(texts)
                    parts.append(
                        f"<{name}{f' type={chr(34)}{kind}{chr(34)}' if kind else ''}>{text}</{name}>"
                    )
            for name in ("published", "updated"):
                if rng.random() < 0.6:
                    parts.append(f"<{name}>{rng.choice(dates)}</{name}>")
            for _ in range(rng.randint(0, 2)):
                parts.append(rng.choice(['<category term="World"/>', '<category term="t" label="Label"/>',
                                         '<category label="Only label"/>', '<category term=""/>']))  # fmt: skip
            for _ in range(rng.choice([0, 1, 1, 2])):
                parts.append(f"<author>{rng.choice(people)}</author>")
            if rng.random() < 0.1:
                parts.append("<contributor><name>C</name></contributor>")
            if rng.random() < 0.05:
                parts.append('<media:thumbnail url="https://ex.com/t.jpg"/>')
            rng.shuffle(parts)
            entries.append(f"<entry>{''.join(parts)}</entry>")
        kind, text = rng.choice(texts[:5])
        head = [f"<title{f' type={chr(34)}{kind}{chr(34)}' if kind else ''}>{text}</title>", "<id>urn:feed</id>",
                rng.choice(['<link href="https://ex.com/"/>', '<link rel="self" href="https://ex.com/feed"/>', ""]),
                "<updated>2025-09-01T00:00:00Z</updated>"]  # fmt: skip
        if rng.random() < 0.3:
            head.append(f"<author>{rng.choice(people)}</author>")
        lang = rng.choice(["", ' xml:lang="en"', ' xml:lang="en_US"', ' xml:lang="fr-CA"'])
        doc = (
            f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{lang} '
            'xmlns:media="http://search.yahoo.com/mrss/">' + "".join(head + entries) + "</feed>"
        )
        kwargs: dict[str, Any] = {"feed_url": "https://ex.com/feeds/atom.xml"} if rng.random() < 0.5 else {}
        feeds.append((f"quirky-atom-{n}.xml", doc.encode("utf-8"), kwargs))
    return feeds


# Fragments a mutation inserts: markup, entities (complete and cut), CDATA, bytes beyond ASCII (a non-BMP
# character breaks names for expat but not for libxml2), dates, links and elements the fast path reads.
_MUTATION_SNIPPETS = [
    b"<p>",
    b"</p>",
    b"<![CDATA[",
    b"]]>",
    b"&amp;",
    b"&#x0;",
    b"&#xD800;",
    b"&nbsp;",
    b"<br/>",
    b"&lt;b&gt;x&lt;/b&gt;",
    b"\xc3\x28",
    b"\xed\xa0\x80",
    b"\xf0\x9f\x98\x80",
    b"\xc3\xa9",
    b"\x00",
    b"\x85",
    b"\xa0",
    b"tariffs ",
    b" ",
    b"\r\n",
    b"<item>",
    b"</item>",
    b"<title>",
    b"</title>",
    b"<description>",
    b"</description>",
    b"<link>",
    b"</link>",
    b"<guid isPermaLink='false'>",
    b"</guid>",
    b"<pubDate>",
    b"</pubDate>",
    b"Mon, 01 Sep 2025 10:00:00 GMT",
    b"<content:encoded>",
    b"</content:encoded>",
    b"<dc:creator>",
    b"</dc:creator>",
    b"<category>",
    b"</category>",
    b"<!--x-->",
    b"<?pi x?>",
    b"xml:base='http://b.example/d/'",
    b" type='html'",
    b"<entry>",
    b"</entry>",
    b"<a href='x'>",
    b"</a>",
    b"&#8220;",
    b"&mdash;",
    b"&unknown;",
    b"<![CDATA[<p>x &amp; y</p>]]>",
    b"\t",
    b"&#13;",
    b" rel='Alternate'",
    b" rel='SELF'",
    b" href='/r'",
    b"encoding='latin-1'",
]


def mutated_feeds(seed: int, count: int) -> list[tuple[str, bytes, dict[str, Any]]]:
    """The quirky RSS and Atom feeds, each changed in 1-4 places (a byte replaced, a fragment inserted, bytes cut
    or repeated): input nobody wrote, for the differential tests (the fast path agrees or falls back)."""
    rng = random.Random(seed)
    bases = [data for _, data, _ in quirky_rss_feeds(seed, 100) + quirky_atom_feeds(seed, 100)]
    return [
        (
            f"mutated-{seed}-{n}.xml",
            _mutated(rng, rng.choice(bases), _MUTATION_SNIPPETS, rng.randrange(1, 5)),
            {},
        )
        for n in range(count)
    ]


def _mutated(rng: random.Random, data: bytes, snippets: list[bytes], changes: int) -> bytes:
    """`data` changed in `changes` places: a byte replaced, one of `snippets` inserted, bytes cut or repeated."""
    out = bytearray(data)
    for _ in range(changes):
        op, at = rng.randrange(4), rng.randrange(len(out) + 1)
        if op == 0 and out:
            out[min(at, len(out) - 1)] = rng.randrange(256)
        elif op == 1:
            out[at:at] = rng.choice(snippets)
        elif op == 2:
            del out[at : at + rng.randrange(1, 16)]
        else:
            start = rng.randrange(len(out) + 1)
            out[at:at] = out[start : start + rng.randrange(1, 100)]
    return bytes(out)


def hostile_jsonl_archive(root: Path, seed: int, *, days: int = 3) -> tuple[int, int]:
    """JSON Lines days (`wire-YYYY-MM-DD.jsonl`, the second gzipped) of records with JSONL_MAPPING's fields,
    a quarter with a value of a wrong type or size, and lines cut, not objects, not UTF-8, NaN, deep, blank,
    CRLF: for the accounting tests. Returns (lines, blank lines)."""
    import gzip

    rng = random.Random(seed)
    words = ["tariffs", "rare", "earth", "TikTok", "the", "of", "section", "232", "<p>", "&amp;", "\u00e9", "\xa0",
             "\x85", "\n\n", "\u2028", "\U0001f600", "said", "export", "controls"]  # fmt: skip
    odd = [
        None,
        1,
        -1.5,
        True,
        [],
        {},
        ["a", 1],
        "x" * 300_000,
        float("1e308"),
        2**70,
        {"a": [1, {"b": None}]},
    ]
    cut = [b'{"uid": "\\ud800", "text": "\\u0000 tariffs"}', b"[1,2,3]", b"   ", b'{"headline": NaN}',
           b'{"text": ' + b"[" * 3000 + b"]" * 3000 + b"}"]  # fmt: skip

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    lines_total = blank = 0
    for d in range(1, days + 1):
        lines = []
        for i in range(rng.randrange(200, 600)):
            rec: dict[str, Any] = {
                "uid": f"w{d}-{i}", "headline": text(rng.randrange(12)), "text": text(rng.randrange(300)),
                "story_url": rng.choice([f"https://wire.example.com/{d}/{i}?utm_source=x", "javascript:x", "", None,
                                         "http://[::1", "https://a.example/%zz"]),
                "teaser": text(rng.randrange(20)), "byline": rng.choice([["A. B", "A. B"], "C. D", None, []]),
                "first_published": rng.choice([f"2025-09-0{d}T10:00:00Z", "not a date", None, "2025-02-30T00:00:00Z"]),
                "section": rng.choice([["Markets"], "Politics", None]), "lang": rng.choice(["en", "EN-us", None]),
            }  # fmt: skip
            if rng.random() < 0.25:
                rec[rng.choice(list(rec))] = rng.choice(odd)
            line = json.dumps(rec, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
            roll = rng.random()
            if roll < 0.03:
                line = line[: rng.randrange(len(line))]
            elif roll < 0.05:
                line = b"\xff\xfe" + line
            elif roll < 0.08:
                line = rng.choice(cut)
            lines.append(line)
        blank += sum(1 for line in lines if not line.strip())
        lines_total += len(lines)
        sep = rng.choice([b"\n", b"\r\n"])
        body = sep.join(lines) + rng.choice([b"", sep])
        name = f"wire-2025-09-{d:02d}.jsonl"
        if d == 2:
            (root / f"{name}.gz").write_bytes(gzip.compress(body))
        else:
            (root / name).write_bytes(body)
    return lines_total, blank


def hostile_snapshot_archive(root: Path, seed: int, *, days: int = 3, per_day: int = 30) -> int:
    """Snapshot days `2025/09/DD/` of mutated feeds, well-formed feeds and mutated plain-text wire stories in the
    seed story's shape: for the accounting tests. Returns the number of files."""
    rng = random.Random(seed)
    feeds = mutated_feeds(seed, 200)
    w = Writer(seed)
    wire = (  # the seed story's shape: paragraphs, a paragraph-to-source Reference Map, a Source: line
        "Tariffs on rare earth magnets rose on Tuesday, officials said.\nTikTok\u2019s future was not discussed.\n"
        "\U0001f4cc Reference Map:\n- Paragraph 1 \u2013 [1], [2]\n- Paragraph 2 \u2013 [3]\nSource: Noah Wire Services"
    ).encode()
    snippets = [b"\nSource: ", b"\n\xf0\x9f\x93\x8c Reference Map:\n", b"- Paragraph 9 \xe2\x80\x93 [1]", b"[1], ",
                b"\n", b"\x00", b"\xff", b"<script>x</script>", b"\r\n", b"&amp;"]  # fmt: skip
    files = 0
    for d in range(1, days + 1):
        day = root / f"2025/09/{d:02d}"
        day.mkdir(parents=True)
        for i in range(per_day):
            roll = rng.random()
            if roll < 0.7:
                name, data = f"feed-{i}.xml", rng.choice(feeds)[1]
            elif roll < 0.85:
                name, data = f"good-{i}.xml", rss_feed(w, d * 100 + i, 5, date(2025, 9, d))
            else:
                name, data = f"wire-{i}.txt", _mutated(rng, wire, snippets, rng.randrange(4))
            (day / name).write_bytes(data)
            files += 1
    return files
