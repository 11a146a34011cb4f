"""Shared test fixtures. Keep this small; module-specific helpers live in their test files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.feedserver import FeedServer

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = REPO.parent / "shared"  # CI has it at ../shared relative to the clone


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def shared_dir() -> Path:
    """../shared; tests needing it skip cleanly when it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


@pytest.fixture
def fetched_at() -> datetime:
    return datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    """A scripted HTTP feed server on 127.0.0.1 (tests/feedserver.py)."""
    with FeedServer() as s:
        yield s
