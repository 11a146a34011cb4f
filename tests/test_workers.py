"""pipeline.jobs.workers: the collector pause around a bulk parse, the heap a worker keeps."""

from __future__ import annotations

import gc
import subprocess
import sys
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


_HEAP_PROBE = """
import sys
from pipeline.jobs.workers import retain_freed_heap
if sys.argv[1] == "retain" and not retain_freed_heap():
    print("unsupported")  # not glibc
    sys.exit()

def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4

before = rss_kib()
blocks = [bytearray(1 << 20) for _ in range(150)]  # 150 MiB touched, in blocks over 128 KiB
del blocks
print(rss_kib() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and /proc")
def test_retained_heap_keeps_freed_blocks_for_the_next_chunk() -> None:
    """By default glibc maps each 1 MiB block on its own and unmaps it when freed; a worker that retains
    its heap keeps what it freed (so the next chunk does not fault it in and zero it again)."""

    def kept_kib(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _HEAP_PROBE, mode], capture_output=True, text=True, check=True
        ).stdout.strip()
        if out == "unsupported":
            pytest.skip("no glibc mallopt here")
        return int(out)

    assert kept_kib("retain") > 120 * 1024
    assert kept_kib("default") < 20 * 1024
