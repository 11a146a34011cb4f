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


# The sampler reads /proc itself where there is one, and finds the tree's processes (a pass over every
# process of the machine: about 1.3 ms here) only every DISCOVER_EVERY samples, reading the stat files of the
# processes it knows at the others. psutil's children(recursive=True) makes that pass at every sample: 8% of
# a core at 20 ms, and on a 2-core machine the sampler then competes with the measured tree for the cores, a
# tree of busy processes more than a single process.
DISCOVER_EVERY = 5
_PROC = "/proc"
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = resource.getpagesize()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _proc_stat(pid: int) -> tuple[int, float, int] | None:
    """(parent pid, user + system seconds, RSS bytes) of a process from /proc/<pid>/stat; None once gone."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as fh:
            data = fh.read()
        fields = data[data.rindex(b")") + 2 :].split()  # after "pid (comm) ": state, ppid, ...
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK, int(fields[21]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _proc_tree(root: int) -> list[int]:
    """The pids of `root` and its descendants (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir(_PROC):
        if name.isdigit() and (stat := _proc_stat(int(name))) is not None:
            children.setdefault(stat[0], []).append(int(name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def _sample_pids(pids: list[int], cpu: dict[int, float]) -> int:
    """Summed RSS of these processes now; records each one's own CPU seconds so far in `cpu`."""
    total = 0
    for pid in pids:
        if (stat := _proc_stat(pid)) is not None:
            total += stat[2]
            cpu[pid] = max(cpu.get(pid, 0.0), stat[1])
    return total


def _sample_tree(proc: psutil.Process, cpu: dict[int, float]) -> int:
    """Summed RSS of the tree now; records each process's own CPU seconds so far in `cpu` (psutil: where
    there is no /proc)."""
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
        if not os.path.exists(f"{_PROC}/{proc.pid}/stat"):
            while not done.is_set():
                peak[0] = max(peak[0], _sample_tree(ps, seen_cpu))
                done.wait(0.02)
            return
        tick, tree = 0, [proc.pid]
        while not done.is_set():
            if tick % DISCOVER_EVERY == 0:
                tree = _proc_tree(proc.pid)
            peak[0] = max(peak[0], _sample_pids(tree, seen_cpu))
            tick += 1
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
