import random

import pytest

from pipeline.parsing.urls import _PLAIN_URL_RE, _canonical, canonical_url, is_tracking_param


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://News.Example.COM/Path", "http://news.example.com/Path"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#section", "https://example.com/a"),
        ("https://user:pw@example.com/a", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"),
        ("  https://example.com/a b\n", "https://example.com/a%20b"),
    ],
)
def test_canonical_form(url, expected):
    assert canonical_url(url) == expected


def test_tracking_params_removed_and_query_sorted_stably():
    url = "https://e.com/a?utm_source=x&b=2&UTM_Medium=y&a=1&fbclid=z&gclid=g&mc_cid=c&mc_eid=e&b=1&a=0"
    assert canonical_url(url) == "https://e.com/a?a=1&a=0&b=2&b=1"


def test_query_encoding_is_kept():
    assert canonical_url("https://e.com/s?q=a+b&r=%2F") == "https://e.com/s?q=a+b&r=%2F"


def test_only_tracking_params_leaves_no_query():
    assert canonical_url("https://e.com/a?utm_campaign=1&fbclid=2") == "https://e.com/a"


@pytest.mark.parametrize(
    ("link", "base", "expected"),
    [
        ("/x/y?z=1", "https://Site.example.org/feed.xml", "https://site.example.org/x/y?z=1"),
        ("y.html", "https://site.example.org/blog/", "https://site.example.org/blog/y.html"),
        ("../up", "https://site.example.org/a/b/", "https://site.example.org/a/up"),
        ("//cdn.example.org/p", "https://site.example.org/", "https://cdn.example.org/p"),
        ("https://other.example/p", "https://site.example.org/", "https://other.example/p"),
    ],
)
def test_relative_links_resolve_against_base(link, base, expected):
    assert canonical_url(link, base) == expected


@pytest.mark.parametrize(
    "url",
    [None, "", "javascript:alert(1)", "mailto:a@b.c", "ftp://e.com/x", "/relative/without/base", "http://",
     "http://e.com:99999/", "http://[::1/"],
)  # fmt: skip
def test_unusable_urls_give_none(url):
    assert canonical_url(url) is None


def test_unsafe_characters_are_escaped():
    url = canonical_url('https://e.com/a<script>?next=javascript:alert(1)&x="y"')
    assert url is not None
    assert "<" not in url and '"' not in url and "javascript:" not in url.lower()


def test_is_tracking_param():
    assert is_tracking_param("utm_term") and is_tracking_param("FBCLID") and is_tracking_param("mc_eid")
    assert not is_tracking_param("id") and not is_tracking_param("page")


def test_plain_urls_take_a_shortcut_to_the_same_canonical_form():
    """canonical_url reads most feed links with one regex; _canonical (urllib) gives the same for them."""
    rng = random.Random(2)
    chars = "abcXYZ019._~!$&'()*+,;=@%/-"
    plain = 0
    for _ in range(20000):
        host = ".".join("".join(rng.choice("aB0-") for _ in range(rng.randint(1, 4))) for _ in range(3))
        url = f"{rng.choice(['http', 'https'])}://{host}"
        if rng.random() < 0.8:
            url += "/" + "".join(rng.choice(chars) for _ in range(rng.randint(0, 12)))
        if rng.random() < 0.6:
            url += "?" + "".join(rng.choice(chars + "?==&&") for _ in range(rng.randint(0, 12)))
            url += rng.choice(["", "utm_source=1", "&fbclid=2", "&token=abc", "&b=%41&a=1"])
        if rng.random() < 0.1:
            url += rng.choice([":443", "#frag", " x", "é", ":8080/", "<", "javascript:x"])
        plain += _PLAIN_URL_RE.fullmatch(url) is not None
        assert canonical_url(url) == _canonical(url, None), url
    assert plain > 15000


def test_remembered_tracking_names_answer_as_is_tracking_param():
    from pipeline.parsing import urls

    for name in [
        "utm_term",
        "UTM_x",
        "fbclid",
        "id",
        "page",
        "%75tm_source",
        "mc_eid",
        "ref",
        "_ga",
        "x",
    ] * 2:
        assert urls._tracking_name(name) == is_tracking_param(name)


def _python_canonical_url(url: str, monkeypatch: pytest.MonkeyPatch) -> str | None:
    from pipeline.parsing import urls

    with monkeypatch.context() as python_only:
        python_only.setattr(urls, "COMPILED", False)
        return canonical_url(url)


def test_the_compiled_plain_url_equals_the_python_path(monkeypatch):
    """_accel.plain_url (the plain-URL shortcut in C) against the Python lines it replaces: random URLs near
    and outside _PLAIN_URL_RE (case, dots, ports, fragments, non-ASCII, many repeated parameters)."""
    from pipeline.parsing import urls

    if not urls.COMPILED:
        pytest.skip("pipeline.parsing._accel was not built")
    rng = random.Random(9)
    chars = "abcXYZ019._~!$&'()*+,;=@%/-?:#[] \té\x00<>"
    names = ["a", "B", "a", "utm_source", "UTM_x", "fbclid", "token", "api-key", "%75tm_x", "", "id", "b"]
    compiled = 0
    for _ in range(30000):
        host_chars = "aBz0-" if rng.random() < 0.8 else "aBz0-_."
        host = ".".join("".join(rng.choice(host_chars) for _ in range(rng.randint(0, 4))) for _ in range(3))
        scheme = rng.choice(["http", "https"]) if rng.random() < 0.8 else rng.choice(["HTTP", "ftp", "http:"])
        url = f"{scheme}://{host}"
        if rng.random() < 0.7:
            url += "/" + "".join(rng.choice(chars[:28] if rng.random() < 0.8 else chars) for _ in range(9))
        if rng.random() < 0.7:
            values = ["", "=", "=1", "=x&"]
            pairs = [f"{rng.choice(names)}{rng.choice(values)}" for _ in range(rng.randint(0, 9))]
            url += "?" + "&".join(pairs)
        if rng.random() < 0.1:
            url += rng.choice([":443", "#frag", " x", "é", ":8080/", "<", "javascript:x", "?", "&&"])
        expected = _python_canonical_url(url, monkeypatch)
        done = urls._compiled_plain_url(url, urls._dropped)
        if done is not None:
            compiled += 1
            assert done == expected and _PLAIN_URL_RE.fullmatch(url), url
        else:
            assert _PLAIN_URL_RE.fullmatch(url) is None, url
        assert canonical_url(url) == expected, url
    assert compiled > 5000


def test_the_compiled_plain_url_asks_for_each_name_and_passes_errors_on():
    from pipeline.parsing import urls
    from pipeline.redact import set_secret_params

    if not urls.COMPILED:
        pytest.skip("pipeline.parsing._accel was not built")
    url = "https://a.example/x?b=1&edition=2&a=3&b=0"
    assert canonical_url(url) == "https://a.example/x?a=3&b=1&b=0&edition=2"
    try:
        set_secret_params(["edition"])  # configured secrets are asked at every call, never remembered
        assert canonical_url(url) == "https://a.example/x?a=3&b=1&b=0"
    finally:
        set_secret_params(())

    def fails(pair: str) -> bool:
        raise ValueError(pair)

    with pytest.raises(ValueError, match="b=1"):
        urls._compiled_plain_url(url, fails)
    with pytest.raises(TypeError):
        urls._compiled_plain_url(b"https://a.example/", urls._dropped)  # type: ignore[arg-type]
    long_query = "https://a.example/?" + "&".join(f"k{i % 97}=v{i}" for i in range(50000))
    assert urls._compiled_plain_url(long_query, urls._dropped) == _canonical(long_query, None)


def test_control_characters_are_percent_encoded_and_shaped_credentials_masked() -> None:
    """C0, DEL and C1 controls in a link never reach the lake raw (a red-team corpus, 4 Dec); a credential of
    a known shape anywhere in the URL is masked, on the compiled plain path and the general one alike."""
    got = canonical_url("https://e.com/p?q=\x1b[31mred&x=\x01\x7f\u009b")
    assert got == "https://e.com/p?q=%1B[31mred&x=%01%7F%C2%9B"
    assert canonical_url("https://e.co\x01m/p") is None
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlMTIz"
    assert canonical_url(f"https://e.com/feeds/{jwt}/item") == "https://e.com/feeds/REDACTED/item"
    assert canonical_url(f"https://E.com/feeds/{jwt}/item x") == "https://e.com/feeds/REDACTED/item%20x"
