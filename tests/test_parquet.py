import pyarrow as pa
import pytest

from pipeline.lake.parquet import dedupe, parquet_bytes, read_stories, read_table, to_table
from pipeline.schema import arrow_schema
from tests.test_schema import make_story


def test_roundtrip_keeps_schema_and_values() -> None:
    stories = [make_story(), make_story(story_id="u:2", topics=[], topic_hits=[], references=[])]
    data = parquet_bytes(to_table(stories))
    assert data[:4] == b"PAR1"
    table = read_table(data)
    assert table.schema.equals(arrow_schema(), check_metadata=False)
    assert read_stories(data) == stories


def test_to_table_rejects_a_story_of_the_wrong_shape() -> None:
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        to_table([make_story(published_at="yesterday")])


def test_empty_table_still_has_the_schema() -> None:
    assert read_table(parquet_bytes(to_table([]))).schema.equals(arrow_schema(), check_metadata=False)


def test_dedupe_on_id_and_content_hash() -> None:
    a, b = make_story(), make_story(content_hash="edited")
    unique, dropped = dedupe([a, a, b, make_story()])
    assert [s["content_hash"] for s in unique] == ["abc", "edited"]
    assert dropped == 2
