import pytest

from pipeline.errors import BadInputError
from pipeline.parsing.stories import StoryBatch, stories_from_bytes
from pipeline.schema import Story, check_story


class RecordingTagger:
    """Marks stories so the test can see the tagger ran on each one."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def tag_story(self, story: Story) -> Story:
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
