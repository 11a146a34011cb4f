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
    # user + system seconds of the whole process tree: the larger of getrusage(RUSAGE_CHILDREN) (exact, but
    # only for processes someone waited for) and the sum over every process seen of its own CPU time,
    # sampled every 20 ms (catches e.g. a multiprocessing forkserver and its workers, which nobody waits for)
    cpu: float
    wall: float
    peak_rss: int  # bytes: the largest sum of RSS over the process tree, sampled every 20 ms


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sample_tree(proc: psutil.Process, cpu: dict[int, float]) -> int:
    """Summed RSS of the tree now; records each process's own CPU seconds so far in `cpu`."""
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                times = p.cpu_times()
                cpu[p.pid] = max(cpu.get(p.pid, 0.0), times.user + times.system)
        except psutil.Error:
            continue
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
    seen_cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        ps = psutil.Process(proc.pid)
        while not done.is_set():
            peak[0] = max(peak[0], _sample_tree(ps, seen_cpu))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    cpu = max(_children_cpu() - before, sum(seen_cpu.values()))
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
