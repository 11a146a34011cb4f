"""pipeline.jobs.workers: the collector pause around a bulk parse."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pipeline.jobs.workers import gc_paused


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_enabled_again_after() -> None:
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_enabled_again_after_an_exception() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_leaves_a_disabled_collector_disabled_and_nests() -> None:
    gc.disable()
    with gc_paused(), gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()
    gc.enable()
    with gc_paused():
        with gc_paused():
            pass
        assert not gc.isenabled()  # the inner pause does not end the outer one
    assert gc.isenabled()


def test_a_cycle_made_while_paused_is_collected_after() -> None:
    class Node:
        pass

    gc.enable()
    with gc_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        ref = id(a)
        del a, b
        assert any(id(o) == ref for o in gc.get_objects())
    gc.collect()
    assert not any(id(o) == ref for o in gc.get_objects())
