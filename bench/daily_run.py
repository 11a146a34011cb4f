"""The daily run end to end: 200 generated feeds x 50 items served over loopback HTTP (ETag, 304), landed
into MinIO (or any S3 endpoint in AWS_ENDPOINT_URL) by `wirefeed run` in a subprocess.

Three runs: day D (everything new), day D+1 (every feed answers 304), and day D again (a rerun of the same
interval, every feed 304: it must keep all of D's stories). Prints wall and whole-tree CPU time of each.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import threading
import uuid
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from bench.generate import Writer, rss_feed
from bench.measure import Run, run
from pipeline.config import Settings
from pipeline.lake.landing import manifest_key, read_manifest
from pipeline.lake.store import open_lake

DAY = date(2026, 11, 20)


class _Feeds(BaseHTTPRequestHandler):
    bodies: ClassVar[dict[str, tuple[bytes, str]]] = {}

    def do_GET(self) -> None:
        found = self.bodies.get(self.path)
        if found is None:
            self.send_response(404)
            self.end_headers()
            return
        body, etag = found
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def _drop_bucket(uri: str, settings: Settings) -> None:
    lake = open_lake(uri, settings)
    for info in lake.list(""):
        lake.delete(info.key)


def daily_run(feeds: int = 200, items: int = 50) -> dict[str, Run]:
    w = Writer(21)
    _Feeds.bodies = {}
    for i in range(feeds):
        body = rss_feed(w, i, items, DAY, title=f"Bench Wire {i}")
        _Feeds.bodies[f"/feed-{i:03d}.xml"] = (body, f'"{hashlib.sha256(body).hexdigest()[:16]}"')
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Feeds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    lake_uri = f"s3://wirefeed-bench-{uuid.uuid4().hex[:8]}/daily"
    settings = Settings.load()
    results: dict[str, Run] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="wirefeed-daily-") as tmp:
            feeds_file = Path(tmp) / "feeds.yaml"
            lines = [
                f"  - {{id: feed-{i:03d}, url: 'http://127.0.0.1:{port}/feed-{i:03d}.xml', source: Wire {i}, "
                "language: en}\n"
                for i in range(feeds)
            ]
            feeds_file.write_text("feeds:\n" + "".join(lines), "utf-8")
            env = {
                "WIREFEED_ALLOWED_PRIVATE_NETWORKS": "127.0.0.1/32",
                "WIREFEED_FETCH_CONCURRENCY": "8",
                "WIREFEED_PER_HOST_CONCURRENCY": "8",  # all 200 feeds share one loopback host here
            }
            base = [
                sys.executable,
                "-m",
                "pipeline.cli",
                "run",
                "--feeds",
                str(feeds_file),
                "--lake",
                lake_uri,
            ]
            results["new"] = run([*base, "--date", DAY.isoformat()], env=env)
            results["all 304, next day"] = run([*base, "--date", (DAY + timedelta(1)).isoformat()], env=env)
            results["all 304, same day again"] = run([*base, "--date", DAY.isoformat()], env=env)
            lake = open_lake(lake_uri, settings)
            rerun = read_manifest(lake, manifest_key("daily", DAY.isoformat()))
            if rerun.rows != feeds * items:
                raise RuntimeError(f"the rerun of {DAY} holds {rerun.rows} stories, not {feeds * items}")
    finally:
        server.shutdown()
        _drop_bucket(lake_uri, settings)
    return results


def main() -> None:
    for name, r in daily_run().items():
        print(f"daily run ({name}): {r.wall:.2f} s wall, {r.cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
