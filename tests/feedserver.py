"""A threaded loopback HTTP server with scripted routes, for fetch/ingest tests.

    with FeedServer() as server:
        server.route("/a.xml", Route(body=RSS, etag='"v1"'))
        server.route("/flaky", Route(status=503, headers={"Retry-After": "0"}), Route(body=RSS))  # in turn
        url = server.url("/a.xml")
        ...
        server.requests_for("/a.xml")[-1].headers["if-none-match"]

Routes answer conditional requests (If-None-Match / If-Modified-Since -> 304), and can stall, trickle,
gzip, send chunked bodies or redirect. Only ever binds 127.0.0.1.
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    gzip: bool = False  # compress the body and send Content-Encoding: gzip
    raw_gzip: bytes | None = None  # send these bytes as the gzip body (e.g. a bomb)
    chunked: bool = False  # no Content-Length: Transfer-Encoding chunked
    stall_before_body: float = 0.0  # seconds to sit silent after the headers
    trickle_seconds: float = 0.0  # then send the body one byte every 0.1 s, for at most this long
    trickle_head: bool = False  # trickle the status line and headers too
    redirect_to: str | None = None  # Location (status defaults to 302 when set)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names


class FeedServer:
    def __init__(self) -> None:
        self._routes: dict[str, list[Route]] = {}
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most requests ever being answered at once
        self.hangups: list[str] = []  # paths whose client hung up before the answer was fully sent
        self._hung_up = threading.Condition(self._lock)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def wrap_tls(self, context: ssl.SSLContext) -> None:
        """Serve HTTPS with `context` (call before requests arrive)."""
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, *responses: Route) -> str:
        """Script `path`: answer the responses in turn, then keep answering the last one. Returns the URL."""
        with self._lock:
            self._routes[path] = list(responses)
        return self.url(path)

    def requests_for(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _next(self, path: str, recorded: Recorded) -> Route | None:
        with self._lock:
            self.requests.append(recorded)
            responses = self._routes.get(path)
            if not responses:
                return None
            return responses.pop(0) if len(responses) > 1 else responses[0]

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _record_hangup(self, path: str) -> None:
        with self._hung_up:
            self.hangups.append(path)
            self._hung_up.notify_all()

    def wait_for_hangup(self, path: str, within: float = 5.0) -> bool:
        """True once the client of `path` hung up mid-answer; False if it does not within `within` s."""
        with self._hung_up:
            return self._hung_up.wait_for(lambda: path in self.hangups, timeout=within)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@cache
def gzip_bomb(decoded_mib: int = 64) -> bytes:
    """A small gzip body that decodes to `decoded_mib` MiB of zeros."""
    return gzip.compress(b"\0" * (decoded_mib * 1024 * 1024), compresslevel=9, mtime=0)


def _handler_for(server: FeedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            recorded = Recorded("GET", self.path, {k.lower(): v for k, v in self.headers.items()})
            route = server._next(self.path, recorded)
            if route is None:
                self._send(404, {}, b"not found")
                return
            server._enter()
            try:
                self._answer(route, recorded.headers)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up: cap, timeout
                server._record_hangup(self.path)
            finally:
                server._leave()

        def _answer(self, route: Route, asked: dict[str, str]) -> None:
            headers = dict(route.headers)
            if route.etag:
                headers["ETag"] = route.etag
            if route.last_modified:
                headers["Last-Modified"] = route.last_modified
            if route.redirect_to:
                headers["Location"] = route.redirect_to
                self._send(route.status if route.status != 200 else 302, headers, b"")
                return
            if route.status == 200 and _not_modified(route, asked):
                self._send(304, headers, b"")
                return
            if route.content_type:
                headers["Content-Type"] = route.content_type
            body = route.body
            if route.raw_gzip is not None or route.gzip:
                body = route.raw_gzip if route.raw_gzip is not None else gzip.compress(body, mtime=0)
                headers["Content-Encoding"] = "gzip"
            self._send(route.status, headers, body, route)

        def _send(
            self, status: int, headers: dict[str, str], body: bytes, route: Route | None = None
        ) -> None:
            if route is not None and route.trickle_head:
                lines = [f"HTTP/1.1 {status} OK", *(f"{k}: {v}" for k, v in headers.items())]
                lines += [f"X-Padding-{i}: {'x' * 20}" for i in range(50)]
                lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
                self._trickle("\r\n".join(lines).encode() + body, route.trickle_seconds)
                self.close_connection = True
                return
            self.send_response(status)
            chunked = route is not None and route.chunked
            for name, value in headers.items():
                self.send_header(name, value)
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if route is not None and route.stall_before_body:
                time.sleep(route.stall_before_body)
            if route is not None and route.trickle_seconds:
                self._trickle(body, route.trickle_seconds)
                return
            if chunked:
                for i in range(0, len(body), 16384):
                    part = body[i : i + 16384]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(body)

        def _trickle(self, body: bytes, seconds: float) -> None:
            end = time.monotonic() + seconds
            for i in range(len(body)):
                if time.monotonic() > end:
                    return
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(0.1)

    return Handler


def _not_modified(route: Route, asked: dict[str, str]) -> bool:
    if route.etag and "if-none-match" in asked:
        return route.etag in [t.strip() for t in asked["if-none-match"].split(",")]
    if route.last_modified and "if-modified-since" in asked:
        return asked["if-modified-since"] == route.last_modified
    return False


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    body: str
    link: str | None = None
    published: str | None = "Wed, 25 Nov 2026 09:00:00 GMT"


def rss(title: str, items: list[Item], encoding: str = "utf-8") -> bytes:
    """A small RSS 2.0 document (the XML declaration names `encoding`; the bytes are UTF-8)."""
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel><title>{title}</title>'
    ]
    for it in items:
        parts.append(f'<item><guid isPermaLink="false">{it.guid}</guid><title>{it.title}</title>')
        if it.link:
            parts.append(f"<link>{it.link}</link>")
        if it.published:
            parts.append(f"<pubDate>{it.published}</pubDate>")
        parts.append(f"<description><![CDATA[<p>{it.body}</p>]]></description></item>")
    parts.append("</channel></rss>\n")
    return "".join(parts).encode("utf-8")
