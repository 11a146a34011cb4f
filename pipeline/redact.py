"""Secrets out of everything wirefeed writes or logs. The one place that decides what a secret looks like.

- `redact_url(url)`: user info and the values of secret query (or fragment) parameters become REDACTED;
  scheme, host, port, path and every other parameter stay, so the URL still says which feed it was. Never
  raises, whatever the URL (bad port, broken IPv6 literal).
- `redact_text(text)`: the same inside free text (error messages, log lines), plus secret header values
  (Authorization, X-Amz-Security-Token, ...) and any secret value registered with `configure`.
- `configure(settings)` (called by Settings.load): the secret parameter names of the settings, the S3 secret
  key and session token as literal values, and a log record factory that redacts every log record of the
  process (botocore's debug output included) before any handler sees it.

Parameter names compare case-insensitively with `-` and `_` ignored (api_key = API-KEY = apikey). The fetch
itself always uses the real URL; only what is written or logged is redacted.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

MASK: Final = "REDACTED"
DEFAULT_SECRET_PARAMS: Final = (
    "api_key", "key", "token", "access_token", "refresh_token", "id_token", "auth", "auth_token",
    "authorization", "sig", "signature", "password", "passwd", "pwd", "secret", "client_secret",
    "session_token", "security_token", "private_token", "x-amz-signature", "x-amz-credential",
    "x-amz-security-token",
)  # fmt: skip
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
    return name.lower().replace("-", "").replace("_", "")


def secret_param(name: str) -> bool:
    """Whether a query parameter of this name carries a secret."""
    return _norm(name) in _names


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
    """name=value pairs joined by & (a query, or a fragment such as #access_token=...)."""
    if "=" not in pairs:
        return pairs
    out = []
    for pair in pairs.split("&"):
        name, eq, _ = pair.partition("=")
        out.append(f"{name}={MASK}" if eq and secret_param(name) else pair)
    return "&".join(out)


def redact_url(url: str) -> str:
    """`url` with user info and secret parameter values replaced by REDACTED. Never raises."""
    if "://" not in url and not url.startswith("//") and "?" not in url and "#" not in url:
        return url  # a file path (or nothing): no user info, no query
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 literal: fall back to the text rules
        return redact_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query, fragment = _redact_pairs(parts.query), _redact_pairs(parts.fragment)
    redacted = urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
    return _mask_values(redacted)


# --- free text --------------------------------------------------------------------------------------------

_USERINFO_RE: Final = re.compile(r"://([^\s/@?#'\"<>]+)@")
# name=value; the name must not continue a word. Linear: a value never contains `&` or spaces, and each
# match starts after the previous one.
_PAIR_RE: Final = re.compile(r"(?<![\w.-])([A-Za-z][\w.-]{0,63})=([^&\s#\"'<>;)\]}]*)")
_HEADER_RE: Final = re.compile(
    r"(?i)\b(" + "|".join(re.escape(h) for h in _SECRET_HEADERS) + r")(['\"]?\s*[:=]\s*b?['\"]?)([^'\"\r\n]+)"
)


def _pair(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    return f"{name}={MASK}" if value and secret_param(name) else match.group(0)


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
    return _mask_values(text)


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
