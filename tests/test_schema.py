from datetime import UTC, datetime, timedelta, timezone

import pyarrow as pa
import pytest

from pipeline.errors import BadRecordError, FatalError
from pipeline.schema import arrow_schema, check_story, field_names, parse_type, story_fields


def make_story(**overrides: object) -> dict[str, object]:
    story: dict[str, object] = {
        "story_id": "u:0123",
        "content_hash": "abc",
        "source": "Wire",
        "origin": "file.txt",
        "feed_url": None,
        "guid": None,
        "url": "https://example.com/a",
        "title": "Title",
        "summary": None,
        "body": "Body.",
        "authors": ["A. Writer"],
        "language": "en",
        "categories": [],
        "published_at": datetime(2025, 9, 10, 12, tzinfo=UTC),
        "updated_at": None,
        "fetched_at": datetime(2025, 9, 11, tzinfo=UTC),
        "topics": ["tiktok"],
        "topic_hits": [{"topic": "tiktok", "term": "tiktok", "count": 2, "in_title": True}],
        "taxonomy_version": "1",
        "references": [{"paragraph": 1, "sources": [1, 4]}],
        "attribution": "Noah Wire Services",
        "schema_version": 1,
    }
    story.update(overrides)
    return story


def test_arrow_schema_matches_yaml_fields() -> None:
    schema = arrow_schema()
    assert schema.names == field_names() == [f.name for f in story_fields()]
    assert schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    assert not schema.field("story_id").nullable
    assert schema.field("url").nullable
    hit = schema.field("topic_hits").type.value_type
    assert [hit.field(i).name for i in range(hit.num_fields)] == ["topic", "term", "count", "in_title"]


def test_parse_type_nested() -> None:
    assert parse_type("list<struct{a: int32, b: list<string>}>") == pa.list_(
        pa.struct([pa.field("a", pa.int32()), pa.field("b", pa.list_(pa.string()))])
    )
    with pytest.raises(FatalError):
        parse_type("decimal")


def test_check_story_accepts_a_valid_story() -> None:
    check_story(make_story())


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"story_id": None}, "story_id"),
        ({"published_at": datetime(2025, 1, 1)}, "published_at"),  # naive
        ({"published_at": datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=2)))}, "published_at"),
        ({"authors": "A. Writer"}, "authors"),
        (
            {"topic_hits": [{"topic": "x", "term": "y", "count": "2", "in_title": False}]},
            "topic_hits[0].count",
        ),
        ({"schema_version": True}, "schema_version"),
    ],
)
def test_check_story_rejects_wrong_types(override: dict[str, object], field: str) -> None:
    with pytest.raises(BadRecordError) as err:
        check_story(make_story(**override))
    assert err.value.fields["field"] == field


def test_check_story_rejects_missing_and_extra_fields() -> None:
    story = make_story(extra=1)
    del story["title"]
    with pytest.raises(BadRecordError) as err:
        check_story(story)
    assert err.value.fields == {"missing": ["title"], "extra": ["extra"]}
