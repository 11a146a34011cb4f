import gzip
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from pipeline.lake.parquet import read_stories
from pipeline.parsing.urls import canonical_url
from pipeline.redact import (
    MASK,
    add_secret_values,
    install_log_redaction,
    mask_shaped,
    redact_text,
    redact_url,
    set_secret_params,
)
from tests.feedserver import FeedServer, Item, Route, rss


@pytest.fixture(autouse=True)
def _defaults():
    yield
    set_secret_params(())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://user:PASS@host:8080/feed.xml?api_key=SECRET&page=2",
            f"http://{MASK}@host:8080/feed.xml?api_key={MASK}&page=2",
        ),
        (
            "https://h/f?Token=abc&API-KEY=def&sig=1#access_token=zzz",
            f"https://h/f?Token={MASK}&API-KEY={MASK}&sig={MASK}#access_token={MASK}",
        ),
        (
            "https://h/f?X-Amz-Signature=ff&X-Amz-Credential=AK%2F1",
            f"https://h/f?X-Amz-Signature={MASK}&X-Amz-Credential={MASK}",
        ),
        ("https://h/feed?page=2&sort=new", "https://h/feed?page=2&sort=new"),
        ("https://TOKEN123@h/x", f"https://{MASK}@h/x"),
        ("/a/path/token=abc.txt", "/a/path/token=abc.txt"),  # a file path is not a URL
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url", ["http://u:p@h:99999/x?key=s", "http://u:p@[::1/x?token=s", "http://[zz]:p@/?key=s"]
)
def test_redact_url_never_raises_on_malformed_urls(url):
    out = redact_url(url)
    assert ":p@" not in out and "=s" not in out


def test_configured_names_add_to_the_defaults():
    set_secret_params(["subscription-key"])
    assert (
        redact_url("https://h/?Subscription_Key=1&api_key=2")
        == f"https://h/?Subscription_Key={MASK}&api_key={MASK}"
    )


def test_redact_text_in_messages_and_debug_output():
    text = (
        "GET http://bob:hunter2@feeds.example/x?api_key=K1&n=1 failed; "
        "{'headers': {'Authorization': b'AWS4-HMAC-SHA256 Credential=AKID/2026, Signature=abcd', "
        "'X-Amz-Security-Token': b'FQoGZXIvYXdzEBY'}} x-amz-security-token:FQoGZXIvYXdzEBY\nnext line"
    )
    out = redact_text(text)
    for secret in ("hunter2", "K1", "AWS4-HMAC", "abcd", "FQoGZXIvYXdzEBY"):
        assert secret not in out
    assert "n=1" in out and "next line" in out and "feeds.example" in out


def test_registered_values_are_masked_anywhere():
    add_secret_values("s3cr3t-session-token-value")
    assert redact_text("token is s3cr3t-session-token-value.") == f"token is {MASK}."


@pytest.mark.parametrize(
    "name",
    [
        "apitoken", "api_token", "accessKey", "secret_key", "private_key", "sessionid", "PHPSESSID", "sid",
        "jwt", "bearer", "secret_access_key", "X-Goog-Signature", "authkey", "auth_key", "apiSecret",
        "oauth_token", "oauth_signature", "client-secret", "Ocp-Apim-Subscription-Key", "csrf_token",
        "passwort", "credentials", "session", "pass", "tok%65n", "api%5Fkey", "x.api.key",
    ],
)  # fmt: skip
def test_secret_names_are_recognized_by_their_parts(name):
    """Not only the listed names: a name holding a secret word (token, secret, signature, ...) or a
    key of a known kind (access key, API key, ...), however spelled, cased or percent-encoded."""
    assert redact_url(f"https://h/f?{name}=SeKrEt42&page=2") == f"https://h/f?{name}={MASK}&page=2"
    assert "SeKrEt42" not in canonical_url(f"https://h/f?{name}=SeKrEt42&page=2")
    assert "SeKrEt42" not in redact_text(f"GET https://h/f?{name}=SeKrEt42 failed")


@pytest.mark.parametrize(
    "name", ["page", "author", "keyword", "id", "sort", "q", "lang", "passage", "designation", "monkey"]
)
def test_ordinary_names_stay(name):
    url = f"https://h/f?{name}=value1"
    assert redact_url(url) == url and canonical_url(url) == url


SHAPED = [
    "AKIAIOSFODNN7EXAMPLE",  # AWS access key id
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",  # JWT
    "ghp_" + "a1B2c3D4e5" * 4,  # GitHub
    "xoxb-123456789012-abcdefghijkl",  # Slack
    "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",  # Google API key
    "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",  # Stripe
    "glpat-" + "xxxxxxxxxxxxxxxxxxxx",  # GitLab
]


@pytest.mark.parametrize("token", SHAPED)
def test_credentials_of_a_known_shape_are_masked_whatever_names_them(token):
    url = f"https://h/u/{token}/feed.xml?q={token}&page=2"
    assert token not in redact_url(url)
    assert token not in redact_text(f"failed: {url} ({token})")
    link = canonical_url(f"https://h/story?ref={token}&id=7")
    assert link == "https://h/story?id=7"
    assert canonical_url(f"https://h/story?ref={quote(token)}&id=7") == "https://h/story?id=7"


def test_path_parameters_are_redacted_and_dropped():
    url = "https://h/a;jsessionid=SeKrEt42;v=2/b?x=1"
    assert redact_url(url) == f"https://h/a;jsessionid={MASK};v=2/b?x=1"
    assert canonical_url(url) == "https://h/a;v=2/b?x=1"


def test_a_url_with_nothing_to_redact_is_kept_as_written():
    """redact_url re-spells nothing it does not redact (an id built from it stays the id)."""
    for url in ("https://h/a?", "https://h/a?x=1#", "https://H/a/../b?b=2&a=1", "http://h:80/a;v=1"):
        assert redact_url(url) == url


@pytest.mark.timeout(60)
def test_redact_text_is_linear():
    """A hang guard (patterns with unbounded runs): a doubled input must not take 4x; here 4 MB run once."""
    for unit in ("a.", "a=", "://", "key=" * 3, "Authorization: ", "-eyJ", "eyJaaaaaaaaa.", "-----BEGIN "):
        redact_text(unit * 1_000_000)


def test_log_records_are_redacted_before_any_handler(caplog):
    install_log_redaction()
    install_log_redaction()  # idempotent
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("botocore.endpoint").debug("Sending %s", "https://u:pw@h/?token=T0KEN")
        try:
            raise ValueError("http://u:pw@h/?api_key=ZZZZ")
        except ValueError:
            logging.getLogger("x").exception("failed")
    assert "pw@" not in caplog.text and "T0KEN" not in caplog.text and "ZZZZ" not in caplog.text


# --- end to end: a real daily run against a loopback server, every byte it wrote or printed -----------------

SECRETS = ("PASSW0RD", "SECRETKEY", "SECRETTOKEN", "SECRETSIG", "reader:")


def every_text_written(root: Path) -> Iterator[tuple[str, bytes]]:
    """Each file under root as bytes, decompressed / decoded where it is gzip or Parquet."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        yield str(path), data
        if path.suffix == ".gz":
            yield f"{path} (gunzipped)", gzip.decompress(data)
        if path.suffix == ".parquet":
            rows = read_stories(data)
            yield f"{path} (rows)", json.dumps(rows, default=str).encode()


def test_a_daily_run_writes_and_logs_no_secret(tmp_path: Path, server: FeedServer) -> None:
    feed = rss("Desk", [Item("g1", "Port strike ends", "Dock workers returned.", "https://news.example/1")])
    query = "api_key=SECRETKEY&token=SECRETTOKEN&page=1"
    server.route(f"/feed.xml?{query}", Route(body=feed, etag='"v1"'))
    server.route("/moved.xml?token=SECRETTOKEN", Route(redirect_to="/final.xml?sig=SECRETSIG"))
    server.route("/final.xml?sig=SECRETSIG", Route(body=feed.replace(b"g1", b"g2")))
    server.route("/denied.xml?api_key=SECRETKEY", Route(status=403))
    base = f"http://reader:PASSW0RD@127.0.0.1:{server.port}"
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(
        f"- {{id: private, url: '{base}/feed.xml?{query}'}}\n"
        f"- {{id: moved, url: 'http://127.0.0.1:{server.port}/moved.xml?token=SECRETTOKEN'}}\n"
        f"- {{id: denied, url: '{base}/denied.xml?api_key=SECRETKEY'}}\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WIREFEED_")},
        "WIREFEED_ALLOWED_PRIVATE_NETWORKS": "127.0.0.1/32",
        "WIREFEED_MAX_RETRIES": "0",
    }
    lake = tmp_path / "lake"
    args = ["-vv", "run", "--feeds", str(feeds), "--lake", str(lake), "--date", "2026-11-25"]
    for _ in range(2):  # the second run sends the stored validators (304) and rewrites the state
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *args], env=env, capture_output=True, timeout=300
        )
        assert done.returncode == 1, done.stderr.decode()[
            -2000:
        ]  # 1: the denied feed failed, the rest landed
        outputs = [("stdout", done.stdout), ("stderr", done.stderr), *every_text_written(lake)]
        leaks = [(name, s) for name, data in outputs for s in SECRETS if s.encode() in data]
        assert leaks == []
    # the real URLs were used: credentials and keys reached the server
    first = server.requests_for(f"/feed.xml?{query}")
    assert first and first[0].headers["authorization"].startswith("Basic ")
    assert server.requests_for("/final.xml?sig=SECRETSIG")
    assert b"denied" in done.stdout and b"REDACTED" in b"".join(d for _, d in every_text_written(lake))


def test_shaped_credentials_are_masked_after_a_dash_or_underscore_and_in_file_paths() -> None:
    """`wire-AKIA...`, `guid-ghp_...`, `x_sk_live_...` (a red-team corpus, 4 Dec); lower-case shapes (Slack,
    Stripe, GitLab) still go through the regex; a plain file path is masked too."""
    assert mask_shaped("wire--AKIAZ7QRTY3XK5MPL2WQ.jsonl") == "wire--REDACTED.jsonl"
    assert mask_shaped("guid-ghp_" + "a1B2" * 9) == "guid-REDACTED"
    for lower in ("x_sk_live_abcdefghijklmnop1234", "xoxb-123456789012-abcdefghijkl", "a glpat-" + "a" * 20):
        assert "REDACTED" in mask_shaped(lower)
    assert redact_url("/archive/wire-AKIAZ7QRTY3XK5MPL2WQ.jsonl") == "/archive/wire-REDACTED.jsonl"
    assert mask_shaped("https://www.example.com/world/2025/09/01/china-rare-earth-controls") == (
        "https://www.example.com/world/2025/09/01/china-rare-earth-controls"
    )


def test_pairs_separated_by_semicolons_are_redacted_in_url_fields_too() -> None:
    """`?a=1;token=...` (a red-team server, 4 Dec): the error text masked it, the URL fields kept it."""
    assert redact_url("http://h/x?a=1;token=SECRETSEMI9n&b=2") == "http://h/x?a=1;token=REDACTED&b=2"
    assert canonical_url("http://h/x?a=1;token=SECRETSEMI9n&b=2") == "http://h/x?b=2"
    assert canonical_url("http://h/x?a=1;b=2") == "http://h/x?a=1;b=2"
