import pytest

from pipeline.errors import BadInputError
from pipeline.parsing.stories import StoryBatch, stories_from_bytes
from pipeline.schema import Story, check_story


class RecordingTagger:
    """Marks stories so the test can see the tagger ran on each one."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def tag_story(self, story: Story, packed: bool = False) -> Story:
        self.seen.append(story["story_id"])
        return {**story, "topics": ["seen"], "taxonomy_version": "test-1"}


def test_parse_normalize_without_tagging(fixtures_dir, fetched_at):
    batch = stories_from_bytes((fixtures_dir / "jsonfeed11.json").read_bytes(), "j", fetched_at=fetched_at)
    assert isinstance(batch, StoryBatch)
    assert [s["title"] for s in batch.stories] == ["TikTok divestiture deadline extended", ""]
    assert batch.rejected_entries == 1 and batch.problems
    for story in batch.stories:
        check_story(story)
        assert story["topics"] == [] and story["taxonomy_version"] == ""


def test_tagger_is_applied_to_every_story(fixtures_dir, fetched_at):
    tagger = RecordingTagger()
    batch = stories_from_bytes(
        (fixtures_dir / "atom10.xml").read_bytes(), "a", fetched_at=fetched_at, tagger=tagger, source="Src"
    )
    assert tagger.seen == [s["story_id"] for s in batch.stories] and len(batch.stories) == 2
    assert all(s["topics"] == ["seen"] and s["source"] == "Src" for s in batch.stories)


def test_entries_normalize_rejects_are_counted(fetched_at):
    feed = (
        b"<rss version='2.0'><channel><title>T</title>"
        b"<item><title>good</title></item>"
        b"<item><description>&lt;script&gt;only a script&lt;/script&gt;</description></item>"
        b"</channel></rss>"
    )
    batch = stories_from_bytes(feed, "f", fetched_at=fetched_at)
    assert [s["title"] for s in batch.stories] == ["good"]
    assert batch.rejected_entries == 1


def test_bad_input_propagates(fixtures_dir, fetched_at):
    with pytest.raises(BadInputError) as err:
        stories_from_bytes(b"", "empty", fetched_at=fetched_at)
    assert err.value.kind == "empty"


def test_real_tagger_on_wire_fixture(fixtures_dir, fetched_at):
    from pipeline.tagging.rules import default_tagger

    batch = stories_from_bytes(
        (fixtures_dir / "wire_story.txt").read_bytes(), "w", fetched_at=fetched_at, tagger=default_tagger()
    )
    (story,) = batch.stories
    check_story(story)
    assert "rare_earths" in story["topics"] and story["taxonomy_version"]


def test_input_whose_every_entry_is_dropped_is_rejected(fetched_at):
    feed = b"<rss><channel><item><description>&lt;img src='x.png'/&gt;</description></item></channel></rss>"
    with pytest.raises(BadInputError) as err:
        stories_from_bytes(feed, "f", fetched_at=fetched_at)
    assert err.value.kind == "no_entries" and "1 entries" in err.value.message


@pytest.mark.parametrize(
    "name", ["rss20_content_encoded.xml", "atom10.xml", "jsonfeed11.json", "rss10_rdf.xml", "wire_story.txt"]
)
def test_every_truncation_is_stories_or_bad_input(fixtures_dir, fetched_at, name):
    data = (fixtures_dir / name).read_bytes()
    kinds = set()
    for cut in range(0, len(data), 3):
        try:
            batch = stories_from_bytes(data[:cut], f"{name}[:{cut}]", fetched_at=fetched_at)
        except BadInputError as exc:
            kinds.add(exc.kind)
            continue
        for story in batch.stories:
            check_story(story)
    assert "empty" in kinds and kinds <= {"empty", "malformed", "no_entries", "encoding"}


# --- issue 8 section 2: no `<tag` in any text field, whatever the escaping or the input kind ---

HOSTILE = "<img src=x onerror=alert(1)//"


def _assert_clean(story: Story) -> None:
    import re

    from pipeline.parsing.text import TAG_OPEN_RE

    for key in ("title", "summary", "body", "guid", "source"):
        value = story[key] or ""
        assert not TAG_OPEN_RE.search(value) and not re.search(r"<[a-zA-Z/!][^>]*>", value), (key, value)
    for name in story["authors"] + story["categories"]:
        assert not TAG_OPEN_RE.search(name), name


def _rss(title: str, description: str, guid: str = "g1", author: str = "Ana") -> bytes:
    return (
        "<rss version='2.0' xmlns:dc='http://purl.org/dc/elements/1.1/'><channel><title>T</title><item>"
        f"<title>{title}</title><description>{description}</description><guid>{guid}</guid>"
        f"<dc:creator>{author}</dc:creator></item></channel></rss>"
    ).encode()


@pytest.mark.parametrize(
    "title, description",
    [
        ("Tariffs &lt;img src=x onerror=alert(1)//", "body text here"),  # escaped, unclosed
        ("Tariffs", "Body &amp;lt;img src=x onerror=alert(1)//"),  # double-escaped description
        ("Tariffs", "&lt;b&gt;" * 3000 + "Body &amp;lt;img src=x onerror=alert(1)//"),  # deep nesting
    ],
)
def test_rss_fields_have_no_markup(title, description, fetched_at):
    (story,) = stories_from_bytes(_rss(title, description), "r.xml", fetched_at=fetched_at).stories
    _assert_clean(story)
    assert story["title"] == "Tariffs"


def test_rss_guid_and_author_have_no_markup(fetched_at):
    data = _rss("T", "b", guid="id &lt;img src=x onerror=alert(1)//", author="Ana &lt;script")
    (story,) = stories_from_bytes(data, "r.xml", fetched_at=fetched_at).stories
    _assert_clean(story)
    assert story["guid"].startswith("id") and story["authors"] == ["Ana"]


def test_json_feed_title_and_content_have_no_markup(fetched_at):
    import json

    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "F",
        "items": [
            {"id": "1", "title": f"Tariffs {HOSTILE}", "content_html": f"<p>Body</p>&lt;img src=x{HOSTILE}"},
            {"id": "2", "title": "Plain", "content_text": f"Text {HOSTILE}"},
        ],
    }
    batch = stories_from_bytes(json.dumps(doc).encode(), "f.json", fetched_at=fetched_at)
    for story in batch.stories:
        _assert_clean(story)
    assert [s["title"] for s in batch.stories] == ["Tariffs", "Plain"]
    assert batch.stories[1]["body"] == "Text"


def test_wire_text_has_no_markup(fetched_at):
    text = (
        f"Title: Tariffs {HOSTILE}\n\nFirst paragraph of the wire story with enough words {HOSTILE}\n\n"
        "Second paragraph with more words in it.\n\nSource: Wire &lt;b\n"
    )
    (story,) = stories_from_bytes(text.encode(), "w.txt", fetched_at=fetched_at).stories
    _assert_clean(story)
    assert story["title"] == "Tariffs"
    assert not (story["attribution"] or "").count("<b")


def test_json_lines_title_has_no_markup(fetched_at):
    from pipeline.parsing.normalize import normalize
    from pipeline.sources.archive import DEFAULT_MAPPING, record_entry

    record = {"title": f"Tariffs {HOSTILE}", "body": f"Body {HOSTILE}", "id": f"x{HOSTILE}"}
    entry = record_entry(record, DEFAULT_MAPPING, origin="a.jsonl", source="a")
    story = normalize(entry, fetched_at=fetched_at)
    _assert_clean(story)
    assert story["title"] == "Tariffs" and story["body"] == "Body"


def test_words_about_scripts_stay_in_every_field(fetched_at):
    data = _rss("Best Practices in JavaScript: Types", "VBScript: and JavaScript: tips")
    (story,) = stories_from_bytes(data, "r.xml", fetched_at=fetched_at).stories
    assert story["title"] == "Best Practices in JavaScript: Types"
    assert story["body"] == "VBScript: and JavaScript: tips"


def test_stories_for_a_table_make_the_table_of_plain_stories(fixtures_dir, fetched_at):
    """for_table: the tagger may pack topic_hits (one tuple, not a dict a hit); the table is the same."""
    from pipeline.lake.parquet import to_table, unpack_hits
    from pipeline.tagging.rules import default_tagger

    tagger = default_tagger()
    data = (fixtures_dir / "wire_story.txt").read_bytes()
    plain = stories_from_bytes(data, "w", fetched_at=fetched_at, tagger=tagger)
    packed = stories_from_bytes(data, "w", fetched_at=fetched_at, tagger=tagger, for_table=True)
    assert to_table(packed.stories).equals(to_table(plain.stories))
    assert sum(len(s["topic_hits"]) for s in plain.stories) > 0
    for a, b in zip(plain.stories, packed.stories, strict=True):
        assert unpack_hits(b["topic_hits"]) == a["topic_hits"]
        assert {**b, "topic_hits": a["topic_hits"]} == a
