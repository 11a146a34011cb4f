"""Per-feed state: validators, raw key, failures and backoff, stored in a (local) lake."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.lake.store import LocalLake
from pipeline.sources.state import (
    FeedState,
    load_state,
    record_failure,
    record_success,
    save_state,
    state_key,
)

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def test_fresh_state_then_round_trip(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    state = load_state(lake, "a", "https://x.org/a")
    assert state == FeedState("a", "https://x.org/a")
    record_success(
        state, status="ok", http_status=200, fetched_at=T0, etag='"1"', last_modified="L", raw_key="raw/k"
    )
    save_state(lake, state)
    assert lake.exists(state_key("a"))
    again = load_state(lake, "a", "https://x.org/a")
    assert (again.etag, again.last_modified, again.raw_key, again.last_status) == ('"1"', "L", "raw/k", "ok")
    assert again.last_success_at == T0.isoformat()


def test_changed_url_drops_validators(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    state = record_success(
        FeedState("a", "https://x.org/a"), status="ok", http_status=200, fetched_at=T0, etag="e"
    )
    save_state(lake, state)
    moved = load_state(lake, "a", "https://x.org/moved")
    assert moved.etag is None and moved.raw_key is None and moved.url == "https://x.org/moved"


def test_failures_back_off_exponentially_and_success_resets() -> None:
    state = FeedState("a")
    base, cap = timedelta(minutes=10), timedelta(hours=1)
    expected = [10, 20, 40, 60, 60]
    for minutes in expected:
        record_failure(state, reason="x", http_status=500, fetched_at=T0, base=base, cap=cap)
        assert state.next_retry_at == (T0 + timedelta(minutes=minutes)).isoformat()
    assert state.consecutive_failures == 5 and state.in_backoff(T0 + timedelta(minutes=59))
    assert not state.in_backoff(T0 + timedelta(minutes=60))
    record_success(state, status="not_modified", http_status=304, fetched_at=T0)
    assert state.consecutive_failures == 0 and state.next_retry_at is None and not state.in_backoff(T0)


def test_retry_after_longer_than_backoff_wins() -> None:
    state = record_failure(FeedState("a"), reason="429", http_status=429, fetched_at=T0, retry_after=7200)
    assert state.next_retry_at == (T0 + timedelta(hours=2)).isoformat()


def test_not_modified_keeps_validators_and_raw_key() -> None:
    state = record_success(
        FeedState("a"), status="ok", http_status=200, fetched_at=T0, etag="e", last_modified="L", raw_key="r"
    )
    record_success(state, status="not_modified", http_status=304, fetched_at=T0)
    assert (state.etag, state.last_modified, state.raw_key) == ("e", "L", "r")


def test_unreadable_state_is_replaced(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    lake.put(state_key("a"), b"{not json")
    assert load_state(lake, "a") == FeedState("a")
