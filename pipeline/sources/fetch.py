"""Hardened HTTP(S) GET for feeds.

Every hop (redirects are followed here, at most Settings.max_redirects) is checked: http/https only, the host
resolved and EVERY address refused when private/loopback/link-local/multicast/reserved unless allowed
(Settings.allow_private_addresses, Settings.allowed_private_networks); the connection then goes to a checked
address (no second DNS lookup to rebind). One attempt is cut at Settings.total_timeout by a watchdog that
shuts the socket, however slowly the server trickles. The body is decompressed here, streaming, and refused
once it passes Settings.max_body_bytes, so a gzip bomb stops early. 408/429/5xx and network errors are
retried with exponential backoff and jitter (429/503 wait for Retry-After instead, when it is within
Settings.max_retry_after; a longer Retry-After is not waited for but raised, for the feed state to honour).
User info in a URL (https://user:password@host/...) is sent as HTTP Basic credentials to that host only; every
URL in a log line or an error is redacted (pipeline.redact), the request itself uses the real one.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import ipaddress
import logging
import random
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from pipeline.config import Settings
from pipeline.errors import BadInputError, RetriableError
from pipeline.redact import redact_url as redact

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
RETRIABLE_STATUSES = frozenset({408, 429})  # and every 5xx
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_SECONDS = 366 * 86400.0  # a longer Retry-After (or a 400-digit one) counts as this long
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, text/plain;q=0.5, */*;q=0.1"
)
_CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class FetchResult:
    status: int
    body: bytes
    headers: dict[str, str]  # lower-case names
    final_url: str
    fetched_at: datetime
    not_modified: bool
    etag: str | None = None
    last_modified: str | None = None
    redirects: list[str] = field(default_factory=list)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def fetch(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    settings: Settings,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """GET `url` with retries. Raises RetriableError (try later), BadInputError (this feed's URL or body is
    unusable: kinds bad_url, blocked_address, redirect_loop, too_many_redirects, http_status, too_large,
    encoding, tls)."""
    attempt = 0
    while True:
        try:
            return _fetch_once(url, etag, last_modified, settings)
        except RetriableError as exc:
            wait = _retry_wait(exc, attempt, settings)
            if wait is None:
                exc.fields["attempts"] = attempt + 1
                raise
            log.info("retrying %s in %.2fs after: %s", redact(url), wait, exc.message)
            sleep(wait)
            attempt += 1


def _retry_wait(exc: RetriableError, attempt: int, settings: Settings) -> float | None:
    """Seconds to wait before the next attempt, or None to give up now."""
    if attempt >= settings.max_retries:
        return None
    if exc.retry_after is not None:
        return None if exc.retry_after > settings.max_retry_after else exc.retry_after
    return backoff_delay(attempt, settings)


def backoff_delay(attempt: int, settings: Settings) -> float:
    """Exponential backoff with jitter: within [1/2, 1] x base x 2^attempt, capped by max_retry_after."""
    full = min(settings.backoff_base * 2.0**attempt, settings.max_retry_after)
    jitter: float = 0.5 + random.random() / 2
    return full * jitter


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    except (OverflowError, TypeError):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER_SECONDS)


# --- one attempt: follow redirects, checking every hop ---


def _fetch_once(url: str, etag: str | None, last_modified: str | None, settings: Settings) -> FetchResult:
    deadline = time.monotonic() + settings.total_timeout
    visited: list[str] = []
    current = url
    while True:
        visited.append(current)
        hop = _Hop(current, settings)
        with _Exchange(hop, settings, deadline) as exchange:
            response = exchange.send({**_request_headers(settings, etag, last_modified), **hop.auth})
            status = response.status
            headers = {k.lower(): v for k, v in response.getheaders()}
            if status in REDIRECT_STATUSES:
                current = _next_hop(current, headers.get("location"), visited, settings)
                continue
            fetched_at = datetime.now(UTC)
            if status == 304:
                body = b""
            elif status in RETRIABLE_STATUSES or 500 <= status <= 599:
                retry_after = None
                if status in RETRY_AFTER_STATUSES:
                    retry_after = parse_retry_after(headers.get("retry-after"))
                raise RetriableError(
                    f"HTTP {status} from {redact(current)}", retry_after=retry_after, status=status
                )
            elif not 200 <= status < 300:
                raise BadInputError(
                    "http_status", f"HTTP {status} from {redact(current)}", status=status, url=redact(current)
                )
            else:
                body = exchange.read_body(response, headers)
        log.info(
            "GET %s -> %d (%d bytes, %d redirects)", redact(current), status, len(body), len(visited) - 1
        )
        return FetchResult(
            status=status,
            body=body,
            headers=headers,
            final_url=current,
            fetched_at=fetched_at,
            not_modified=status == 304,
            etag=headers.get("etag"),
            last_modified=headers.get("last-modified"),
            redirects=visited[1:],
        )


def _request_headers(settings: Settings, etag: str | None, last_modified: str | None) -> dict[str, str]:
    headers = {
        "User-Agent": settings.http_user_agent(),
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip, deflate",
        "Connection": "close",
    }
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def _next_hop(current: str, location: str | None, visited: list[str], settings: Settings) -> str:
    if not location:
        raise BadInputError(
            "bad_url", f"redirect without Location from {redact(current)}", url=redact(current)
        )
    try:
        target = urljoin(current, location.strip())
    except ValueError:  # e.g. a broken IPv6 literal
        raise BadInputError(
            "bad_url", f"redirect from {redact(current)} to a malformed URL", url=redact(location)
        ) from None
    if target in visited:
        raise BadInputError("redirect_loop", f"redirect loop at {redact(target)}", url=redact(target))
    if len(visited) > settings.max_redirects:
        raise BadInputError(
            "too_many_redirects", f"more than {settings.max_redirects} redirects", url=redact(visited[0])
        )
    return target


_CONTROL_RE = re.compile(r"[\x00-\x20\x7f]")


class _Hop:
    """One URL, checked: scheme, host, port, and every address the host resolves to."""

    def __init__(self, url: str, settings: Settings) -> None:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:  # a port out of 0..65535, a broken IPv6 literal
            raise BadInputError("bad_url", f"malformed URL: {exc}", url=redact(url)) from None
        self.scheme = parts.scheme.lower()
        if self.scheme not in ("http", "https"):
            raise BadInputError(
                "bad_url", f"only http(s) URLs are fetched, not {self.scheme!r}", url=redact(url)
            )
        if not parts.hostname:
            raise BadInputError("bad_url", "URL has no host", url=redact(url))
        self.url = url
        self.host = parts.hostname
        self.port = port or (443 if self.scheme == "https" else 80)
        self.target = urlunsplit(("", "", parts.path or "/", parts.query, ""))
        if _CONTROL_RE.search(self.target):  # http.client would refuse it, echoing the query (API keys)
            raise BadInputError("bad_url", "URL contains spaces or control characters", url=redact(url))
        try:
            ascii_host = self.host if _is_ip(self.host) else self.host.encode("idna").decode("ascii")
        except UnicodeError:
            raise BadInputError("bad_url", "host name is not a valid (IDNA) name", url=redact(url)) from None
        host = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
        self.host_header = (
            host if self.port == (443 if self.scheme == "https" else 80) else f"{host}:{self.port}"
        )
        self.auth = _basic_auth(parts.username, parts.password)
        self.addresses = resolve_checked(self.host, self.port, settings)


def _basic_auth(username: str | None, password: str | None) -> dict[str, str]:
    """The Authorization header for user info in the URL (percent-decoded), or none."""
    if username is None and password is None:
        return {}
    pair = f"{unquote(username or '')}:{unquote(password or '')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def resolve_checked(host: str, port: int, settings: Settings) -> list[str]:
    """Resolve `host`; refuse (BadInputError blocked_address) if ANY address is not allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RetriableError(f"cannot resolve {host}: {exc}", host=host) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not address_allowed(address, settings):
            raise BadInputError(
                "blocked_address",
                f"{host} resolves to non-public address {address}",
                host=host,
                address=address,
            )
    return addresses


def address_allowed(address: str, settings: Settings) -> bool:
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 (mapped, 6to4, Teredo client) is judged as that IPv4 address
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    if settings.allow_private_addresses:
        return True
    if any(ip in ipaddress.ip_network(n, strict=False) for n in settings.allowed_private_networks):
        return True
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _FinalResponse(http.client.HTTPResponse):
    """The final response: every interim 1xx one (102 Processing, 103 Early Hints, ...) is skipped, where
    http.client skips only 100 Continue and would return a 103 as the answer. (101 Switching Protocols is
    final: a feed never asks for it, so it fails as any other non-2xx status.) A flood of them ends at the
    exchange's deadline."""

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 102 <= status < 200:
                return version, status, reason
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]  # the interim response's


class _Exchange:
    """One request/response on a socket we own, under a deadline enforced by a watchdog."""

    def __init__(self, hop: _Hop, settings: Settings, deadline: float) -> None:
        self.hop = hop
        self.settings = settings
        self.deadline = deadline
        self.sock: socket.socket | None = None
        self.conn: http.client.HTTPConnection | None = None
        self.response: http.client.HTTPResponse | None = None
        self.timed_out = threading.Event()
        self.watchdog: threading.Timer | None = None

    def __enter__(self) -> _Exchange:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
        if self.response is not None:  # holds the socket open (makefile) until closed
            self.response.close()
        if self.conn is not None:
            self.conn.close()
        elif self.sock is not None:
            self.sock.close()

    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0 or self.timed_out.is_set():
            raise self._timeout()
        return left

    def _timeout(self) -> RetriableError:
        return RetriableError(
            f"total timeout ({self.settings.total_timeout}s) fetching {redact(self.hop.url)}",
            timeout=self.settings.total_timeout,
        )

    def _kill(self) -> None:
        self.timed_out.set()
        if self.sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(self.sock, socket.SHUT_RDWR)

    def _connect(self) -> socket.socket:
        last: OSError | None = None
        for address in self.hop.addresses:
            timeout = min(self.settings.connect_timeout, self._remaining())
            try:
                return socket.create_connection((address, self.hop.port), timeout=timeout)
            except OSError as exc:
                last = exc
        raise RetriableError(f"cannot connect to {self.hop.host}:{self.hop.port}: {last}", host=self.hop.host)

    def send(self, headers: dict[str, str]) -> http.client.HTTPResponse:
        try:
            sock = self._connect()
            self.sock = sock
            self.watchdog = threading.Timer(self._remaining(), self._kill)
            self.watchdog.daemon = True
            self.watchdog.start()
            sock.settimeout(self._remaining())
            conn_class = (
                http.client.HTTPSConnection if self.hop.scheme == "https" else http.client.HTTPConnection
            )
            if self.hop.scheme == "https":
                context = ssl.create_default_context()  # verifies certificates and host names
                sock = context.wrap_socket(sock, server_hostname=self.hop.host)
                self.sock = sock
            self.conn = conn_class(self.hop.host, self.hop.port)
            self.conn.response_class = _FinalResponse
            self.conn.sock = sock
            self.conn.request("GET", self.hop.target, headers={**headers, "Host": self.hop.host_header})
            self.response = self.conn.getresponse()
            return self.response
        except ssl.SSLCertVerificationError as exc:  # a wrong certificate will not fix itself on retry
            raise BadInputError(
                "tls",
                f"TLS verification failed for {self.hop.host}: {exc.verify_message}",
                host=self.hop.host,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc) from None

    def read_body(self, response: http.client.HTTPResponse, headers: dict[str, str]) -> bytes:
        cap = self.settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _too_large(self.hop.url, cap, declared=int(declared))
        decoder = _Decoder(headers.get("content-encoding", ""), cap, self.hop.url)
        received = 0
        try:
            while True:
                self._remaining()
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                if received > cap:
                    raise _too_large(self.hop.url, cap)
                decoder.feed(chunk)
        except (OSError, http.client.HTTPException) as exc:
            raise self._network_error(exc) from None
        if self.timed_out.is_set():  # the watchdog's shutdown looks like EOF to the reader
            raise self._timeout()
        if response.length:  # Content-Length promised more than arrived
            raise RetriableError(f"body of {redact(self.hop.url)} cut short", missing=response.length)
        return decoder.finish()

    def _network_error(self, exc: BaseException) -> RetriableError:
        if self.timed_out.is_set() or time.monotonic() >= self.deadline:
            return self._timeout()
        return RetriableError(f"network error fetching {redact(self.hop.url)}: {exc!r}", host=self.hop.host)


def _too_large(url: str, cap: int, **fields: object) -> BadInputError:
    return BadInputError("too_large", f"body of {redact(url)} exceeds {cap} bytes", cap=cap, **fields)


class _Decoder:
    """Streaming Content-Encoding decoder that stops as soon as the decoded size passes the cap."""

    def __init__(self, encoding: str, cap: int, url: str) -> None:
        self.encoding = encoding.strip().lower()
        if self.encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise BadInputError(
                "encoding",
                f"unsupported Content-Encoding {encoding.strip()!r}",  # as sent, not lower-cased
                url=redact(url),
            )
        self.cap = cap
        self.url = url
        self.out = bytearray()
        # wbits 47: zlib or gzip header, detected
        self.zlib = zlib.decompressobj(47) if self.encoding not in ("", "identity") else None

    def feed(self, chunk: bytes) -> None:
        if self.zlib is None:
            self.out += chunk
        else:
            while chunk:
                try:
                    self.out += self.zlib.decompress(chunk, self.cap - len(self.out) + 1)
                except zlib.error as exc:
                    raise BadInputError(
                        "encoding", f"bad {self.encoding} body: {exc}", url=redact(self.url)
                    ) from None
                if len(self.out) > self.cap:
                    break
                # a following gzip member starts a new stream
                chunk = self.zlib.unused_data if self.zlib.eof else b""
                if chunk:
                    self.zlib = zlib.decompressobj(47)
        if len(self.out) > self.cap:
            raise _too_large(self.url, self.cap, decoded=True)

    def finish(self) -> bytes:
        if self.zlib is not None and not self.zlib.eof and self.out:
            raise BadInputError("encoding", f"truncated {self.encoding} body", url=redact(self.url))
        return bytes(self.out)
