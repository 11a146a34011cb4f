"""Feed list validation: every error names the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.sources.feeds import FeedSpec, load_feeds, parse_feeds


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_feeds(write(tmp_path, text))
    return err.value


def test_loads_feeds_with_defaults_and_resolves_local_paths(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.xml").write_text("<rss/>")
    path = write(
        tmp_path,
        """\
# comment
- {id: reuters-world, url: "https://example.com/world.rss", source: Reuters, language: EN-gb}
- id: local-sample
  url: data/a.xml
  local: true
- {id: dormant, url: "http://example.com/x", enabled: false}
""",
    )
    feeds = load_feeds(path)
    assert feeds == [
        FeedSpec("reuters-world", "https://example.com/world.rss", "Reuters", "en-gb", True, False),
        FeedSpec(
            "local-sample", str((tmp_path / "data" / "a.xml").resolve()), "local-sample", None, True, True
        ),
    ]
    every = load_feeds(path, include_disabled=True)
    assert [f.id for f in every] == ["reuters-world", "local-sample", "dormant"]


def test_accepts_a_feeds_mapping(tmp_path: Path) -> None:
    feeds = parse_feeds("feeds:\n  - {id: a, url: 'https://example.com/a'}\n", tmp_path / "f.yaml")
    assert [f.id for f in feeds] == ["a"]


@pytest.mark.parametrize(
    ("text", "line", "field", "words"),
    [
        ("- {id: a, url: 'https://x.org/a'}\n- {id: a, url: 'https://x.org/b'}\n", 2, "id", "duplicate"),
        ("- {id: a, url: 'https://x.org/a'}\n-\n  id: '../etc'\n  url: 'https://x.org/b'\n", 3, "id", "safe"),
        ("- id: a\n  url: 'ftp://x.org/a'\n", 2, "url", "http(s)"),
        ("- id: a\n  url: 'file:///etc/passwd'\n", 2, "url", "http(s)"),
        ("- id: a\n  url: 'https://x.org/a'\n  enabled: maybe\n", 3, "enabled", "true or false"),
        ("- id: a\n  url: 'https://x.org/a'\n  colour: red\n", 3, "colour", "unknown field"),
        ("- id: a\n  source: S\n", 1, "url", "missing"),
        ("- id: off\n  url: 'https://x.org/a'\n", 1, "id", "quote it"),
        ("- id: a\n  url: [1, 2]\n", 2, "url", "single value"),
        ("- id: a\n  url: missing.xml\n  local: true\n", 2, "url", "does not exist"),
        ("- id: a\n  url: 'https://x.org/a'\n  language: 'not a tag!'\n", 3, "language", "BCP 47"),
        ("- id: a\n  url: 'https://x.org/a'\n  url: 'https://x.org/b'\n", 3, "url", "twice"),
        ("- id: a\n  url: 'https://x.org:99999/a?api_key=SECRET'\n", 2, "url", "not a valid URL"),
        ("- id: a\n  url: 'https://[::1/a'\n", 2, "url", "not a valid URL"),
        ("- just a string\n", 1, "feed", "mapping"),
        ("a: 1\n", 1, "feeds", "list"),
    ],
)
def test_errors_name_line_and_field(tmp_path: Path, text: str, line: int, field: str, words: str) -> None:
    err = error_of(tmp_path, text)
    assert err.fields["line"] == line and err.fields["field"] == field
    assert f"feeds.yaml:{line}: field '{field}'" in err.message and words in err.message


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid YAML" in error_of(tmp_path, "- {id: a, url: [\n").message
    with pytest.raises(ConfigError):
        load_feeds(tmp_path / "nope.yaml")


def test_the_shipped_example_is_valid() -> None:
    feeds = load_feeds(Path(__file__).parent.parent / "config" / "feeds.yaml", include_disabled=True)
    assert feeds and len({f.id for f in feeds}) == len(feeds)


def test_secrets_in_a_bad_url_are_not_echoed(tmp_path: Path) -> None:
    err = error_of(tmp_path, "- id: a\n  url: 'https://u:PASS@x.org:99999/a?api_key=SECRET'\n")
    assert "PASS" not in err.message and "SECRET" not in err.message


@pytest.mark.parametrize(
    ("content", "line"), [(b"- id: a\n  url: 'https://x.org/\xe9'\n", 2), (b"\xff\xfe", 1)]
)
def test_a_feeds_file_that_is_not_utf8_names_the_line(tmp_path: Path, content: bytes, line: int) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="not UTF-8") as err:
        load_feeds(path)
    assert err.value.fields["line"] == line


def test_yaml_nested_too_deep_is_a_config_error(tmp_path: Path) -> None:
    assert "too deep" in error_of(tmp_path, "- " + "[" * 100_000).message
