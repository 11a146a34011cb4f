"""Per-feed fetch state in the lake at `_state/feeds/<feed_id>.json`.

Holds the HTTP validators for conditional GET, the raw key of the last body (a 304 replays it), and failure
bookkeeping: after each consecutive failure the feed backs off exponentially (or for the server's Retry-After,
if longer); a feed whose next_retry_at is in the future is skipped. The URL and the last error are stored
redacted (pipeline.redact): a state file never holds a password or an API key.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta

from pipeline.errors import FatalError
from pipeline.lake.store import Lake, NotFoundError
from pipeline.redact import redact_text, redact_url

log = logging.getLogger(__name__)

STATE_PREFIX = "_state/feeds/"
BACKOFF_BASE = timedelta(minutes=15)
BACKOFF_MAX = timedelta(days=1)


@dataclass
class FeedState:
    feed_id: str
    url: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    raw_key: str | None = None  # raw body of the last 200
    landed_in: str | None = None  # manifest key whose interval holds raw_key's stories (once it is written)
    last_status: str | None = None  # a FeedOutcome status: ok / not_modified / failed / skipped
    last_http_status: int | None = None
    last_error: str | None = None
    last_fetched_at: str | None = None  # ISO 8601 UTC
    last_success_at: str | None = None
    consecutive_failures: int = 0
    next_retry_at: str | None = None

    def in_backoff(self, now: datetime) -> bool:
        if self.next_retry_at is None:
            return False
        try:
            return datetime.fromisoformat(self.next_retry_at) > now
        except (TypeError, ValueError):  # a hand-edited or damaged file: no backoff rather than a traceback
            return False

    def to_json(self) -> bytes:
        doc = asdict(self)
        doc["url"] = redact_url(self.url) if self.url else self.url
        doc["last_error"] = redact_text(self.last_error) if self.last_error else self.last_error
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def state_key(feed_id: str) -> str:
    return f"{STATE_PREFIX}{feed_id}.json"


def load_state(lake: Lake, feed_id: str, url: str | None = None) -> FeedState:
    """The stored state, or a fresh one. Validators are dropped when the feed's URL changed (compared
    redacted, as stored: a rotated API key alone is no new feed)."""
    key = state_key(feed_id)
    try:
        data = lake.get(key)  # one round trip (no exists() first): every feed reads its state every run
    except NotFoundError:
        return FeedState(feed_id, url)
    try:
        doc = json.loads(data)
        known = {f.name for f in fields(FeedState)}
        state = FeedState(**{k: v for k, v in doc.items() if k in known})
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        log.warning("ignoring unreadable feed state %s: %s", key, exc)
        return FeedState(feed_id, url)
    if state.feed_id != feed_id:
        raise FatalError(f"state {key} belongs to feed {state.feed_id!r}", key=key)
    if url is not None and state.url is not None and redact_url(state.url) != redact_url(url):
        state.url, state.etag, state.last_modified = url, None, None
        state.raw_key = state.landed_in = None
    elif url is not None:
        state.url = url
    return state


def save_state(lake: Lake, state: FeedState) -> None:
    lake.put(state_key(state.feed_id), state.to_json(), "application/json")


def record_success(
    state: FeedState,
    *,
    status: str,
    http_status: int | None,
    fetched_at: datetime,
    etag: str | None = None,
    last_modified: str | None = None,
    raw_key: str | None = None,
) -> FeedState:
    """A 200 (validators and raw key replaced) or a 304 (validators kept unless the server sent new ones)."""
    state.last_status, state.last_http_status, state.last_error = status, http_status, None
    state.last_fetched_at = state.last_success_at = _iso(fetched_at)
    state.consecutive_failures, state.next_retry_at = 0, None
    if status == "ok":
        state.etag, state.last_modified, state.raw_key = etag, last_modified, raw_key or state.raw_key
    else:
        state.etag, state.last_modified = etag or state.etag, last_modified or state.last_modified
    return state


def record_failure(
    state: FeedState,
    *,
    reason: str,
    http_status: int | None,
    fetched_at: datetime,
    retry_after: float | None = None,
    base: timedelta = BACKOFF_BASE,
    cap: timedelta = BACKOFF_MAX,
) -> FeedState:
    """Count a failure and set next_retry_at: base x 2^(failures-1), or Retry-After if longer; at most cap."""
    state.consecutive_failures += 1
    state.last_status, state.last_http_status, state.last_error = "failed", http_status, reason
    state.last_fetched_at = _iso(fetched_at)
    delay = base * 2 ** min(state.consecutive_failures - 1, 32)
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=min(retry_after, cap.total_seconds())))
    state.next_retry_at = _iso(fetched_at + min(delay, cap))
    return state


def record_skipped(state: FeedState) -> FeedState:
    state.last_status = "skipped"
    return state


def _iso(when: datetime) -> str:
    if when.tzinfo is None:
        raise ValueError("naive datetime")
    return when.astimezone(UTC).isoformat()
