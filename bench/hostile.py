"""Hostile inputs, each at one size and at double that size: every stage must be linear (about 2x, never 4x).

    .venv/bin/python -m bench.hostile

Process CPU time of parse + normalize + tag for one input (best of 3). Figures move with the machine's load.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from pipeline.errors import BadInputError
from pipeline.parsing.stories import load_default_tagger, stories_from_bytes

PROSE = "The talks on tariffs and export controls resumed in Madrid on Tuesday.\n"


def _rss_item(inner: str) -> bytes:
    item = f"<item><title>t</title>{inner}<description>d</description></item>"
    return f'<rss version="2.0"><channel><title>c</title>{item}</channel></rss>'.encode()


CASES: dict[str, Callable[[int], bytes]] = {
    "feedparser author field without @": lambda n: _rss_item(f"<author>{'a' * n}</author>"),
    "wire Title: line with a run of spaces": lambda n: f"Title: a{' ' * n}b\n\n{PROSE}".encode(),
    "wire Source: line with a run of spaces": lambda n: f"{PROSE}\nSource: a{' ' * n}b\n".encode(),
    "wire paragraph of 'Dr. A '": lambda n: ("Dr. A " * (n // 6) + "\n\n" + PROSE).encode(),
    "wire paragraph of 'A. '": lambda n: ("A. " * (n // 3) + "\n\n" + PROSE).encode(),
    "wire paragraph of dismissed topic mentions": lambda n: (
        "Tariffs on rare earth magnets, not TikTok. " * (n // 44) + "\n\n" + PROSE
    ).encode(),
    "extension element of n/10 attributes (feedparser's SAX path)": lambda n: _rss_item(
        '<x:meta xmlns:x="urn:x" ' + "".join(f'a{i}="v" ' for i in range(n // 10)) + "/>"
    ),
    "HTML tag of n/10 attributes in a description": lambda n: _rss_item("").replace(
        b"<description>d</description>",
        b"<description><![CDATA[<img "
        + b"".join(b'a%d="v" ' % i for i in range(n // 10))
        + b">]]></description>",
    ),
    "Atom entry of n/100 categories and authors": lambda n: (
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:x="urn:x"><title>f</title><entry><title>t</title>'
        + "".join(f'<category term="c{i}"/><author><name>A{i}</name></author>' for i in range(n // 100))
        + "<x:odd/></entry></feed>"
    ).encode(),
    "RSS title of n characters": lambda n: _rss_item("").replace(
        b"<title>t</title>", b"<title>" + b"w " * (n // 2) + b"</title>"
    ),
}


def _cpu(data: bytes) -> float:
    tagger = load_default_tagger()
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        with contextlib.suppress(BadInputError):
            stories_from_bytes(data, "bench", fetched_at=datetime.now(UTC), tagger=tagger)
        best = min(best, time.process_time() - start)
    return best


def main(size: int = 1_000_000) -> None:
    print(f"{'input':42} {'n':>9} {'CPU s':>8} {'2n':>9} {'CPU s':>8} {'ratio':>6}")
    for name, make in CASES.items():
        one, two = _cpu(make(size)), _cpu(make(2 * size))
        print(f"{name:42} {size:9d} {one:8.3f} {2 * size:9d} {two:8.3f} {two / max(one, 1e-6):6.2f}")


if __name__ == "__main__":
    main()
