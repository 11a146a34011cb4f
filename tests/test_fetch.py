"""Each fetch rule against a real loopback server (tests/feedserver.py)."""

from __future__ import annotations

import gzip
import socket
import ssl
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import BadInputError, RetriableError
from pipeline.sources.fetch import _Decoder, address_allowed, backoff_delay, fetch, parse_retry_after
from tests.feedserver import FeedServer, Route, gzip_bomb

RSS = b"""<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>
<item><title>One</title><link>https://example.com/1</link><guid>1</guid></item></channel></rss>"""
CAP = 64 * 1024


@pytest.fixture
def settings() -> Settings:
    return Settings(
        allowed_private_networks=("127.0.0.1/32",),
        connect_timeout=1.0,
        total_timeout=1.0,
        max_body_bytes=CAP,
        max_retries=2,
        backoff_base=0.01,
        max_retry_after=5.0,
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_plain_get_returns_body_validators_and_names_the_project(
    server: FeedServer, settings: Settings
) -> None:
    url = server.route("/a.xml", Route(body=RSS, etag='"v1"', last_modified="Tue, 24 Nov 2026 10:00:00 GMT"))
    result = fetch(url, settings=settings)
    assert (result.status, result.body, result.not_modified) == (200, RSS, False)
    assert result.etag == '"v1"' and result.last_modified == "Tue, 24 Nov 2026 10:00:00 GMT"
    assert result.final_url == url and result.content_type == "application/rss+xml; charset=utf-8"
    assert result.fetched_at.tzinfo is UTC
    sent = server.requests_for("/a.xml")[0].headers
    assert sent["user-agent"].startswith("wirefeed/")
    assert "if-none-match" not in sent and "if-modified-since" not in sent


def test_conditional_get_sends_validators_and_304_means_not_modified(
    server: FeedServer, settings: Settings
) -> None:
    lm = "Tue, 24 Nov 2026 10:00:00 GMT"
    url = server.route("/a.xml", Route(body=RSS, etag='"v1"', last_modified=lm))
    result = fetch(url, etag='"v1"', last_modified=lm, settings=settings)
    assert (result.status, result.not_modified, result.body) == (304, True, b"")
    sent = server.requests_for("/a.xml")[0].headers
    assert sent["if-none-match"] == '"v1"' and sent["if-modified-since"] == lm
    # a changed ETag gets the full body
    assert fetch(url, etag='"v0"', settings=settings).body == RSS


def test_last_modified_alone_is_sent_as_if_modified_since(server: FeedServer, settings: Settings) -> None:
    lm = "Tue, 24 Nov 2026 10:00:00 GMT"
    url = server.route("/lm.xml", Route(body=RSS, last_modified=lm))
    assert fetch(url, last_modified=lm, settings=settings).not_modified


@pytest.mark.parametrize("chunked", [False, True])
def test_gzip_body_is_decoded(server: FeedServer, settings: Settings, chunked: bool) -> None:
    url = server.route("/gz", Route(body=RSS, gzip=True, chunked=chunked))
    assert fetch(url, settings=settings).body == RSS


def test_gzip_bomb_is_refused_at_the_decoded_cap(server: FeedServer, settings: Settings) -> None:
    url = server.route("/bomb", Route(raw_gzip=gzip_bomb(64)))
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=settings)
    assert err.value.kind == "too_large" and err.value.fields["decoded"] is True


def test_decoder_stops_early_on_a_bomb() -> None:
    decoder = _Decoder("gzip", 1024 * 1024, "http://x/")
    bomb = gzip_bomb(64)
    with pytest.raises(BadInputError):
        decoder.feed(bomb)
    assert len(decoder.out) <= 1024 * 1024 + 1  # never inflated past the cap


def test_multi_member_gzip_is_decoded_whole() -> None:
    decoder = _Decoder("gzip", CAP, "http://x/")
    decoder.feed(gzip.compress(b"abc") + gzip.compress(b"def"))
    assert decoder.finish() == b"abcdef"


def test_bad_gzip_is_an_encoding_error(server: FeedServer, settings: Settings) -> None:
    url = server.route("/badgz", Route(raw_gzip=b"this is not gzip at all"))
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=settings)
    assert err.value.kind == "encoding"


@pytest.mark.parametrize("chunked", [False, True])
def test_body_over_the_cap_is_refused(server: FeedServer, settings: Settings, chunked: bool) -> None:
    url = server.route("/big", Route(body=b"x" * (CAP + 1), chunked=chunked))
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=settings)
    assert err.value.kind == "too_large"


def test_body_at_the_cap_is_accepted(server: FeedServer, settings: Settings) -> None:
    url = server.route("/exact", Route(body=b"x" * CAP, chunked=True))
    assert len(fetch(url, settings=settings).body) == CAP


def test_redirects_are_followed_up_to_the_limit(server: FeedServer, settings: Settings) -> None:
    for i in range(5):
        server.route(f"/r{i}", Route(redirect_to=f"/r{i + 1}", status=301 if i % 2 else 302))
    server.route("/r5", Route(body=RSS))
    result = fetch(server.url("/r0"), settings=settings)
    assert result.body == RSS and result.final_url == server.url("/r5") and len(result.redirects) == 5
    with pytest.raises(BadInputError) as err:
        fetch(server.url("/r0"), settings=settings.with_(max_redirects=4))
    assert err.value.kind == "too_many_redirects"


def test_redirect_loop_is_detected(server: FeedServer, settings: Settings) -> None:
    server.route("/loop-a", Route(redirect_to="/loop-b"))
    server.route("/loop-b", Route(redirect_to="/loop-a"))
    with pytest.raises(BadInputError) as err:
        fetch(server.url("/loop-a"), settings=settings)
    assert err.value.kind == "redirect_loop"
    assert len(server.requests_for("/loop-a")) == 1


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "blocked_address"),
        ("http://10.0.0.1/feed", "blocked_address"),
        ("http://[::1]:9/feed", "blocked_address"),
        ("http://0.0.0.0/", "blocked_address"),
        ("http://127.0.0.1:99999/x", "bad_url"),
        ("http://[::1/x", "bad_url"),
        ("//[bad/x?token=SECRET", "bad_url"),
    ],
)
def test_redirect_to_a_private_address_or_a_malformed_url_is_refused_before_connecting(
    server: FeedServer, settings: Settings, location: str, kind: str
) -> None:
    url = server.route("/evil", Route(redirect_to=location))
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=settings)
    assert err.value.kind == kind and "SECRET" not in str(err.value.to_dict())


def test_loopback_is_refused_by_default(server: FeedServer) -> None:
    url = server.route("/a.xml", Route(body=RSS))
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=Settings())
    assert err.value.kind == "blocked_address"
    assert server.requests_for("/a.xml") == []
    assert fetch(url, settings=Settings(allow_private_addresses=True)).body == RSS


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:127.0.0.1", True),
        ("2002:a9fe:a9fe::1", False),  # 6to4 wrapping 169.254.169.254
        ("2002:7f00:1::", True),  # 6to4 wrapping 127.0.0.1, which this test allows
        ("2002:5db8:d822::1", True),  # 6to4 wrapping a public address
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo client 10.0.0.1
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
    ],
)
def test_address_rules(address: str, allowed: bool) -> None:
    settings = Settings(allowed_private_networks=("127.0.0.1/32",))
    assert address_allowed(address, settings) is allowed


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/feed", "gopher://127.0.0.1/", "http:///x"]
)
def test_only_http_urls_are_fetched(settings: Settings, url: str) -> None:
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=settings)
    assert err.value.kind == "bad_url"


def test_redirect_to_a_file_url_is_refused(server: FeedServer, settings: Settings) -> None:
    url = server.route("/to-file", Route(redirect_to="file:///etc/passwd"))
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=settings)
    assert err.value.kind == "bad_url"


def test_server_errors_are_retried_with_backoff_then_raised(server: FeedServer, settings: Settings) -> None:
    url = server.route("/500", Route(status=500, body=b"boom"))
    sleeps = Sleeps()
    with pytest.raises(RetriableError) as err:
        fetch(url, settings=settings, sleep=sleeps)
    assert err.value.fields["status"] == 500 and err.value.fields["attempts"] == 3
    assert len(server.requests_for("/500")) == 3
    assert len(sleeps) == 2
    assert 0.005 <= sleeps[0] <= 0.01 and 0.01 <= sleeps[1] <= 0.02  # base 0.01 x 2^attempt, jittered


@pytest.mark.parametrize("status", [408, 501, 502, 504, 599])
def test_every_5xx_and_408_is_retried(server: FeedServer, settings: Settings, status: int) -> None:
    url = server.route("/t", Route(status=status), Route(body=RSS))
    assert fetch(url, settings=settings, sleep=Sleeps()).body == RSS
    assert len(server.requests_for("/t")) == 2


def test_transient_error_then_success(server: FeedServer, settings: Settings) -> None:
    url = server.route("/flaky", Route(status=503), Route(status=408), Route(body=RSS))
    sleeps = Sleeps()
    assert fetch(url, settings=settings, sleep=sleeps).body == RSS
    assert len(sleeps) == 2 and len(server.requests_for("/flaky")) == 3


def test_429_waits_for_retry_after(server: FeedServer, settings: Settings) -> None:
    url = server.route("/429", Route(status=429, headers={"Retry-After": "3"}), Route(body=RSS))
    sleeps = Sleeps()
    assert fetch(url, settings=settings, sleep=sleeps).body == RSS
    assert sleeps == [3.0]


def test_retry_after_beyond_the_cap_is_not_waited_for(server: FeedServer, settings: Settings) -> None:
    url = server.route("/429", Route(status=429, headers={"Retry-After": "3600"}))
    sleeps = Sleeps()
    with pytest.raises(RetriableError) as err:
        fetch(url, settings=settings, sleep=sleeps)
    assert err.value.retry_after == 3600.0 and sleeps == []
    assert len(server.requests_for("/429")) == 1


def test_retry_after_forms() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Wed, 25 Nov 2026 12:01:30 GMT", now) == 90.0
    assert parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_are_not_retried(server: FeedServer, settings: Settings, status: int) -> None:
    url = server.route("/gone", Route(status=status))
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=settings, sleep=Sleeps())
    assert err.value.kind == "http_status" and err.value.fields["status"] == status
    assert len(server.requests_for("/gone")) == 1


def test_trickling_server_is_cut_at_the_total_timeout(server: FeedServer, settings: Settings) -> None:
    # one byte every 0.1 s: every read succeeds, only the total deadline (1 s) can stop it
    url = server.route("/trickle", Route(body=RSS, trickle_seconds=10))
    with pytest.raises(RetriableError) as err:
        fetch(url, settings=settings.with_(max_retries=0))
    assert "total timeout" in err.value.message
    assert server.wait_for_hangup("/trickle")


def test_trickled_headers_are_cut_at_the_total_timeout(server: FeedServer, settings: Settings) -> None:
    # the status line and headers arrive a byte every 0.1 s: only the watchdog can stop the header read
    url = server.route("/slow-head", Route(body=RSS, trickle_seconds=10, trickle_head=True))
    with pytest.raises(RetriableError) as err:
        fetch(url, settings=settings.with_(max_retries=0))
    assert "total timeout" in err.value.message
    assert server.wait_for_hangup("/slow-head")  # we hung up; the server did not run out of bytes first


def test_silent_server_is_cut_at_the_total_timeout(server: FeedServer, settings: Settings) -> None:
    url = server.route("/silent", Route(body=RSS, stall_before_body=10))
    with pytest.raises(RetriableError) as err:
        fetch(url, settings=settings.with_(max_retries=0))
    assert "total timeout" in err.value.message


def test_connection_refused_is_retriable(settings: Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RetriableError) as err:
        fetch(f"http://127.0.0.1:{port}/feed", settings=settings, sleep=Sleeps())
    assert err.value.fields["attempts"] == 3


def test_backoff_grows_and_is_capped() -> None:
    settings = Settings(backoff_base=1.0, max_retry_after=5.0)
    for attempt, full in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (10, 5.0)]:
        delay = backoff_delay(attempt, settings)
        assert full / 2 <= delay <= full


def test_tls_certificates_are_verified(tmp_path: Path, settings: Settings) -> None:
    """A self-signed certificate for 127.0.0.1 is refused (and not retried): verification is on."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    with FeedServer() as server:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.wrap_tls(context)
        url = server.route("/a.xml", Route(body=RSS)).replace("http://", "https://")
        with pytest.raises(BadInputError) as err:
            fetch(url, settings=settings, sleep=Sleeps())
    assert err.value.kind == "tls" and "certificate" in err.value.message


def test_url_with_a_space_is_a_bad_url_that_does_not_echo_its_query(
    server: FeedServer, settings: Settings
) -> None:
    url = server.route("/a.xml", Route(body=RSS)) + "?key=SECRET&q=a b"
    sleeps = Sleeps()
    with pytest.raises(BadInputError) as info:
        fetch(url, settings=settings, sleep=sleeps)
    assert info.value.kind == "bad_url" and sleeps == []
    assert "SECRET" not in info.value.message and "SECRET" not in repr(info.value.fields)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:99999/feed.xml?api_key=SECRET",
        "http://[::1/feed.xml?api_key=SECRET",
        "http://[zz::]/f",
    ],
)
def test_malformed_url_is_a_bad_url_error(settings: Settings, url: str) -> None:
    with pytest.raises(BadInputError) as err:
        fetch(url, settings=settings)
    assert err.value.kind == "bad_url" and "SECRET" not in str(err.value.to_dict())


def test_user_info_is_sent_as_basic_auth_and_never_echoed(server: FeedServer, settings: Settings) -> None:
    server.route("/private.xml", Route(body=RSS))
    url = f"http://reader:pa%24%24word@127.0.0.1:{server.port}/private.xml?api_key=SECRET"
    server.route("/private.xml?api_key=SECRET", Route(body=RSS))
    result = fetch(url, settings=settings)
    assert result.body == RSS
    sent = server.requests_for("/private.xml?api_key=SECRET")[0].headers
    assert sent["authorization"] == "Basic cmVhZGVyOnBhJCR3b3Jk"  # reader:pa$$word
    denied = server.route("/denied.xml", Route(status=403))
    with pytest.raises(BadInputError) as err:
        fetch(denied.replace("http://", "http://reader:pa%24%24word@") + "?token=SECRET", settings=settings)
    assert "word" not in err.value.message and "SECRET" not in str(err.value.to_dict())


def test_huge_retry_after_does_not_overflow() -> None:
    assert parse_retry_after("9" * 400) == 366 * 86400.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT") == 366 * 86400.0


def test_the_user_agent_names_the_project_and_the_contact_setting(server: FeedServer) -> None:
    from pipeline import __version__
    from pipeline.errors import ConfigError

    url = server.route("/ua.xml", Route(body=RSS))
    env = {
        "WIREFEED_CONTACT": "mailto:feeds@newsroom.example",
        "WIREFEED_ALLOWED_PRIVATE_NETWORKS": "127.0.0.1/32",
    }
    fetch(url, settings=Settings.load(env=env))
    sent = server.requests_for("/ua.xml")[-1].headers["user-agent"]
    assert sent == f"wirefeed/{__version__} (wire-feed ingestion; +mailto:feeds@newsroom.example)"
    assert "example.invalid" not in Settings().http_user_agent()
    assert Settings(user_agent="custom/1").http_user_agent() == "custom/1"
    with pytest.raises(ConfigError, match="contact"):
        Settings.load(env={"WIREFEED_CONTACT": "me\r\nX-Injected: 1"})


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n" * 2,
        b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
    ],
)
def test_interim_responses_are_skipped(settings: Settings, interim: bytes) -> None:
    """103 Early Hints and 102 Processing before the answer (a red-team server, 4 Dec): http.client skips
    only 100 Continue and took a 103 for the answer (the feed failed with `HTTP 103`)."""
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    body = RSS.encode() if isinstance(RSS, str) else RSS

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            final = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            conn.sendall(interim + final + body)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        got = fetch(
            f"http://127.0.0.1:{listener.getsockname()[1]}/feed", settings=settings.with_(max_retries=0)
        )
    finally:
        listener.close()
    assert got.status == 200 and got.body == body
