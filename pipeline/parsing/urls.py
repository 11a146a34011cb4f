"""Canonical story URLs: one spelling per article, so ids built from them are stable. User info, tracking
parameters and secret parameters (pipeline.redact: api_key, token, ...) are not part of an article's
identity and are dropped.

w3lib.url.canonicalize_url and url-normalize were run against tests/test_urls.py (with this module's
tracking filter added) and not adopted: w3lib keeps default ports, user info and trailing-dot hosts and
reorders repeated parameters (6 of 29 cases fail, 2.5x slower); url-normalize keeps user info, decodes %2F
in queries and leaves `<` unescaped (3 fail, 6x slower).
"""

from __future__ import annotations

import functools
import re
from typing import Final
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from pipeline.parsing.text import COMPILED
from pipeline.redact import edit_path_params, mask_shaped, secret_pair

if COMPILED:
    from pipeline.parsing._accel import plain_url as _compiled_plain_url

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_TRACKING_PREFIXES: Final = ("utm_", "mc_", "_hs", "pk_", "mtm_", "oly_", "ga_")
_TRACKING_NAMES: Final = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "igshid", "li_fat_id", "mkt_tok", "vero_id", "vero_conv", "_ga", "_gl", "_openstat", "wt.mc_id",
        "ref_src", "ref_url", "s_cid", "cmpid", "sr_share", "at_medium", "at_campaign", "rss_source",
    }
)  # fmt: skip
_STRIP_RE: Final = re.compile(r"[\t\n\r]")  # WHATWG URL parsing drops these
_ESCAPE: Final = {c: f"%{ord(c):02X}" for c in ' <>"`{}|\\^\x7f' + "".join(map(chr, range(32)))}
_ESCAPE.update({chr(c): "".join(f"%{b:02X}" for b in chr(c).encode()) for c in range(0x80, 0xA0)})  # C1
_ESCAPE_TABLE: Final = str.maketrans(_ESCAPE)
_SCRIPT_RE: Final = re.compile(r"(?i)(javascript|vbscript):")


def is_tracking_param(name: str) -> bool:
    key = _unquote(name).lower()
    return key in _TRACKING_NAMES or key.startswith(_TRACKING_PREFIXES)


def _unquote(text: str) -> str:
    """unquote(text), which returns text without a '%' as it is, without the call."""
    return unquote(text) if "%" in text else text


def _dropped(pair: str) -> bool:
    """Whether a query parameter (name=value, as written) is dropped: a tracking or secret name, or a value
    that holds a credential of a known shape."""
    if ";" in pair:  # `a=1;token=...`: pairs separated by `;` (redact_url reads them so too)
        return any(_dropped(p) for p in pair.split(";") if p)
    raw_name, _, value = pair.partition("=")
    name = _unquote(raw_name)
    return _tracking_name(name) or secret_pair(name, value)


@functools.lru_cache(maxsize=4096)  # parameter names repeat from link to link
def _tracking_name(name: str) -> bool:
    """is_tracking_param(name), remembered (it depends on nothing but the name; secret_param is configurable
    and is asked every time)."""
    return is_tracking_param(name)


def _name_of(pair: str) -> str:
    return pair.partition("=")[0]


def _clean_query(query: str) -> str:
    """Drop tracking and secret parameters; sort the rest by name, keeping the order of repeated names."""
    pairs = [p for p in query.split("&") if p and not _dropped(p)]
    if len(pairs) > 1:
        pairs.sort(key=_name_of)
    return "&".join(pairs)


# An absolute http(s) URL already in canonical form but for the host's case and the query: lower-case
# scheme, host without user info, port or trailing dot, path and query of characters that canonical_url
# neither escapes nor rewrites (no ':', so no script scheme; no ';': path parameters may be secrets), no
# fragment. Most feed links are such.
_PLAIN_URL_RE: Final = re.compile(
    r"(https?)://([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(/[A-Za-z0-9._~!$&'()*+,=@%/-]*)?"
    r"(?:\?([A-Za-z0-9._~!$&'()*+,;=@%/?-]*))?",
    re.ASCII,
)


# An absolute http(s) URL with a host: `base` plays no part (urljoin would return the URL, re-spelled).
_ABSOLUTE_RE: Final = re.compile(r"https?://[^/?#\\\s]", re.IGNORECASE)


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """http(s) URL -> canonical form, resolving relative links against `base`; anything else -> None."""
    if not url:
        return None
    canonical = _canonical_form(url, base)
    return mask_shaped(canonical) if canonical else None  # a credential of a known shape anywhere in it


def _canonical_form(url: str, base: str | None) -> str | None:
    """canonical_url's form of `url`, before credentials of a known shape are masked."""
    if COMPILED and (done := _compiled_plain_url(url, _dropped)) is not None:  # the lines below, in C
        return done
    plain = _PLAIN_URL_RE.fullmatch(url)
    if plain is None:
        return _canonical(url, None if base is None or _ABSOLUTE_RE.match(url) else base)
    scheme, host, path, query = plain.groups()  # what _canonical gives for it, without urllib's parsing
    query = _clean_query(query) if query else ""
    return f"{scheme}://{host.lower()}{path or '/'}{'?' if query else ''}{query}"


def _clean_path(path: str) -> str:
    """Drop secret path parameters (`/a;jsessionid=...`); (canonical_url masks credentials of a known shape
    anywhere in the URL)."""
    return edit_path_params(path, _kept_param) or "/"


def _kept_param(param: str) -> str | None:
    return None if param.partition("=")[1] and _dropped(param) else param


def _slashes(url: str) -> str:
    """Backslashes before the query as slashes, as browsers read an http(s) URL (WHATWG): `https:\\u:p@h\\x`
    is https://u:p@h/x, whose user info is then dropped, not a path that keeps it."""
    if "\\" not in url:
        return url
    end = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    return url[:end].replace("\\", "/") + url[end:]


def _canonical(url: str, base: str | None) -> str | None:
    url = _slashes(_STRIP_RE.sub("", url).strip())
    if base:
        try:
            url = urljoin(_slashes(_STRIP_RE.sub("", base).strip()), url)
        except ValueError:
            return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # bad IPv6 literal or port
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host or any(c in host for c in ' <>"\\') or not host.isprintable():
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _clean_path(parts.path) if ";" in parts.path else parts.path or "/"
    canonical = urlunsplit((scheme, netloc, path, _clean_query(parts.query), ""))
    return _SCRIPT_RE.sub(r"\1%3A", canonical.translate(_ESCAPE_TABLE))
