"""Secrets out of everything wirefeed writes or logs. The one place that decides what a secret looks like.

- `redact_url(url)`: user info, the values of secret query, fragment and path (`;name=value`) parameters,
  and credentials of a known shape anywhere in it (`secret_value`) become REDACTED; scheme, host, port, path
  and every other parameter stay, so the URL still says which feed it was. Never raises, whatever the URL
  (bad port, broken IPv6 literal).
- `redact_text(text)`: the same inside free text (error messages, log lines), plus secret header values
  (Authorization, X-Amz-Security-Token, ...) and any secret value registered with `configure`.
- `secret_param(name)`: a parameter name holds a secret when, compared without case, percent-encoding, `-`,
  `_` and `.`, it is one of the secret names (DEFAULT_SECRET_PARAMS and the settings' own) or contains one of
  SECRET_STEMS (`accessKey`, `X-Goog-Signature`, `oauth_token`, `PHPSESSID`, `client-secret`, ...).
- `configure(settings)` (called by Settings.load): the secret parameter names of the settings, the S3 secret
  key and session token as literal values, and a log record factory that redacts every log record of the
  process (botocore's debug output included) before any handler sees it.

The fetch itself always uses the real URL; only what is written or logged is redacted.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import unquote_plus, urlsplit, urlunsplit

MASK: Final = "REDACTED"
DEFAULT_SECRET_PARAMS: Final = (
    "api_key", "key", "token", "access_token", "refresh_token", "id_token", "auth", "auth_token",
    "authorization", "sig", "signature", "password", "passwd", "pwd", "secret", "client_secret",
    "session_token", "security_token", "private_token", "x-amz-signature", "x-amz-credential",
    "x-amz-security-token", "pass", "session", "sid", "otp", "jwt", "bearer",
)  # fmt: skip
# A name that contains one of these (normalized as _norm does) holds a secret too, whatever else it says
SECRET_STEMS: Final = (
    "token", "secret", "passw", "pwd", "signature", "credential", "apikey", "accesskey", "privatekey",
    "secretkey", "authkey", "appkey", "clientkey", "licensekey", "subscriptionkey", "masterkey", "signingkey",
    "accountkey", "sessionkey", "sessionid", "sessid", "authorization", "cookie",
)  # fmt: skip
# Credentials recognizable by their shape, whatever names them: AWS access key ids, JSON Web Tokens, GitHub,
# GitLab, Slack, Google API and Stripe keys, PEM private keys. Linear: a shape whose characters include `-` or
# `_` with no bound on its length starts only where a run of token characters starts (else each `-eyJ` of a
# long run would be scanned to the run's end); the others start after any non-alphanumeric ("wire-AKIA...").
_SHAPED_RE: Final = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[0-9A-Z]{16}(?![0-9A-Z])"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|AIza[0-9A-Za-z_-]{35}"
    r"|[rs]k_(?:live|test)_[0-9A-Za-z]{16,}"
    r")"
    r"|(?<![A-Za-z0-9_-])(?:"
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|github_pat_[A-Za-z0-9_]{30,}|glpat-[A-Za-z0-9_-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r")"
    r"|-----BEGIN [A-Z ]{0,40}PRIVATE KEY-----[^-]*(?:-----END [A-Z ]{0,40}PRIVATE KEY-----)?"
)
_SHAPED_MIN = 20  # no shape above is shorter
_SECRET_HEADERS: Final = (
    "authorization",
    "proxy-authorization",
    "x-amz-security-token",
    "cookie",
    "set-cookie",
)

_lock = threading.Lock()
_names: frozenset[str] = frozenset()
_values: tuple[str, ...] = ()  # literal secrets (longest first)


def _norm(name: str) -> str:
    if "%" in name or "+" in name:
        name = unquote_plus(name)
    return name.lower().replace("-", "").replace("_", "").replace(".", "")


def secret_param(name: str) -> bool:
    """Whether a query (fragment, path) parameter of this name carries a secret."""
    return _secret_name(name, _names)


@functools.lru_cache(maxsize=4096)  # parameter names repeat from URL to URL; the names set is part of the key
def _secret_name(name: str, names: frozenset[str]) -> bool:
    key = _norm(name)
    return key in names or any(stem in key for stem in SECRET_STEMS)


def secret_value(value: str) -> bool:
    """Whether a parameter's value (as written, or percent-decoded) holds a credential of a known shape."""
    if len(value) < _SHAPED_MIN:
        return False
    if _SHAPED_RE.search(value) is not None:
        return True
    return "%" in value and _SHAPED_RE.search(unquote_plus(value)) is not None


def secret_pair(name: str, value: str) -> bool:
    """Whether a name=value parameter carries a secret: by its name, or by its value's shape."""
    return secret_param(name) or secret_value(value)


def mask_shaped(text: str) -> str:
    """`text` with every credential of a known shape (secret_value's) replaced by REDACTED."""
    if len(text) < _SHAPED_MIN or _lower_and_plain(text):
        return text
    return _SHAPED_RE.sub(MASK, text)


def _lower_and_plain(text: str) -> bool:
    """Whether `text` cannot hold a shape, judged cheaply: most links and ids are lower-case, and a shape with
    no capital letter has `_` (GitHub, Stripe), `xox` (Slack) or `glpat` (GitLab) in it."""
    return text.lower() == text and "_" not in text and "xox" not in text and "glpat" not in text


def set_secret_params(names: Iterable[str]) -> None:
    """DEFAULT_SECRET_PARAMS plus `names` (Settings.secret_params adds to the defaults, never removes)."""
    global _names
    with _lock:
        _names = frozenset(_norm(n) for n in (*DEFAULT_SECRET_PARAMS, *names) if n.strip())


set_secret_params(())


def add_secret_values(*values: str | None) -> None:
    """Literal secrets (keys, tokens) to mask wherever they appear in logged or written text."""
    global _values
    with _lock:
        known = set(_values) | {v for v in values if v and len(v) >= 4}
        _values = tuple(sorted(known, key=len, reverse=True))


# --- URLs -------------------------------------------------------------------------------------------------


def _redact_pairs(pairs: str) -> str:
    """name=value pairs joined by & or ; (a query, or a fragment such as #access_token=...)."""
    if "=" not in pairs:
        return pairs
    out = []
    for pair in pairs.split("&"):
        # (`;` separates pairs too, in older query syntax and in what servers accept: `?a=1;token=...`)
        out.append(";".join(map(_masked_pair, pair.split(";"))) if ";" in pair else _masked_pair(pair))
    return "&".join(out)


def _masked_pair(pair: str) -> str:
    """A name=value pair with its value masked when it carries a secret (secret_pair); else as it is."""
    name, eq, value = pair.partition("=")
    return f"{name}={MASK}" if eq and secret_pair(name, value) else pair


def edit_path_params(path: str, edit: Callable[[str], str | None]) -> str:
    """`path` with each path parameter (the `name=value` after a segment's `;`) replaced by edit(param), or
    dropped where that is None. The one walk of path parameters (redact_url masks, canonical_url drops)."""
    segments = []
    for segment in path.split("/"):
        head, *params = segment.split(";")
        kept = [edited for edited in map(edit, params) if edited is not None]
        segments.append(";".join((head, *kept)))
    return "/".join(segments)


def redact_url(url: str) -> str:
    """`url` with user info and secret parameter values replaced by REDACTED. Never raises."""
    if "://" not in url and not url.startswith("//") and "?" not in url and "#" not in url:
        # a file path (or nothing): no user info, no query; maybe path parameters (`a;jsessionid=...`)
        return mask_shaped(edit_path_params(url, _masked_pair) if ";" in url else url)
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 literal: fall back to the text rules
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    path = edit_path_params(parts.path, _masked_pair) if ";" in parts.path else parts.path
    query = _redact_pairs(parts.query)
    fragment = _redact_pairs(parts.fragment)
    if (netloc, path, query, fragment) != (parts.netloc, parts.path, parts.query, parts.fragment):
        url = urlunsplit((parts.scheme, netloc, path, query, fragment))  # else as written, not re-spelled
    return mask_shaped(_mask_values(url))


# --- free text --------------------------------------------------------------------------------------------

_USERINFO_RE: Final = re.compile(r"://([^\s/@?#'\"<>]+)@")
# name=value; the name must not continue a word. Linear: a value never contains `&` or spaces, and each
# match starts after the previous one.
_PAIR_RE: Final = re.compile(r"(?<![\w.%-])([A-Za-z][\w.%-]{0,63})=([^&\s#\"'<>;)\]}]*)")
_HEADER_RE: Final = re.compile(
    r"(?i)\b(" + "|".join(re.escape(h) for h in _SECRET_HEADERS) + r")(['\"]?\s*[:=]\s*b?['\"]?)([^'\"\r\n]+)"
)


def _pair(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    return f"{name}={MASK}" if value and secret_pair(name, value) else match.group(0)


def _mask_values(text: str) -> str:
    for value in _values:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_text(text: str) -> str:
    """Free text with URL user info, secret name=value pairs, secret header values and registered secret
    values replaced by REDACTED. Linear in the text."""
    if not text:
        return text
    text = _USERINFO_RE.sub(f"://{MASK}@", text)
    if "=" in text:
        text = _PAIR_RE.sub(_pair, text)
    if ":" in text or "=" in text:
        text = _HEADER_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return mask_shaped(_mask_values(text))


# --- logs -------------------------------------------------------------------------------------------------


def _redacting_factory(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave the record for logging to report
            return record
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
        return record

    factory.wirefeed_redacts = True  # type: ignore[attr-defined]
    return factory


def install_log_redaction() -> None:
    """Redact every log record of this process when it is created (idempotent)."""
    with _lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "wirefeed_redacts", False):
            logging.setLogRecordFactory(_redacting_factory(current))


def configure(secret_params: Iterable[str] = (), secret_values: Iterable[str | None] = ()) -> None:
    """Arm redaction for this process: extra parameter names, literal secret values, log records."""
    set_secret_params(secret_params)
    add_secret_values(*secret_values)
    install_log_redaction()
