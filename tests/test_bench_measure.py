"""bench/measure.py: the CPU and peak memory of a command's whole process tree."""

from __future__ import annotations

import os
import sys

import pytest

from bench import measure

SPIN = "import time\nx = bytearray({mib} << 20)\nfor i in range(0, len(x), 4096): x[i] = 1\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"  # noqa: E501


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="no /proc")
def test_proc_stat_reads_this_process() -> None:
    ppid, seconds, rss = measure._proc_stat(os.getpid()) or (0, 0.0, 0)
    assert ppid == os.getppid() and seconds > 0 and rss > 10 << 20
    assert measure._proc_stat(2**22 + 7) is None  # no such process
    assert os.getpid() in measure._proc_tree(os.getppid())


def test_run_counts_a_tree_and_its_peak_memory() -> None:
    one = SPIN.format(mib=120, s=0.4)
    script = f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {one!r}])\nexec({one!r})\n"
    result = measure.run([sys.executable, "-c", script])  # the child is never waited for: sampled
    assert result.cpu >= 0.6  # two spins of 0.4 CPU-s
    assert result.peak_rss >= 200 << 20
