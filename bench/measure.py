"""Whole-process measurements: CPU seconds of a command's process tree, wall time, peak summed RSS."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Run:
    cpu: float  # user + system seconds of the command and every descendant it waited for
    wall: float
    peak_rss: int  # bytes: the largest sum of RSS over the process tree, sampled every 20 ms


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
    except psutil.Error:
        return 0
    return total


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: str | None = None) -> Run:
    """Run `cmd` to completion (output discarded unless it fails) and measure it."""
    before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd),
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(ps))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    cpu = _children_cpu() - before
    if proc.returncode != 0:
        tail = out.decode(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
    return Run(cpu, wall, peak[0])


def paired(a: Callable[[], Run], b: Callable[[], Run], repeats: int) -> tuple[list[Run], list[Run]]:
    """Interleave a and b (a b, b a, a b, ...) so both see the same load; each repeated `repeats` times."""
    runs_a: list[Run] = []
    runs_b: list[Run] = []
    for i in range(repeats):
        order = ((a, runs_a), (b, runs_b)) if i % 2 == 0 else ((b, runs_b), (a, runs_a))
        for fn, into in order:
            into.append(fn())
    return runs_a, runs_b


def median_cpu(runs: Sequence[Run]) -> float:
    return statistics.median(r.cpu for r in runs)


def median_wall(runs: Sequence[Run]) -> float:
    return statistics.median(r.wall for r in runs)
