"""Peak memory of a benchmark child and every process it starts (the parallel import's workers).

The resident sizes of a parent and its forked workers cannot be added: pages they share copy-on-write
would count once per process. The proportional set size (PSS, /proc/PID/smaps_rollup) shares each page
out among the processes that map it, so the sum over the tree is the memory the import really holds.
It is sampled every ``interval`` seconds while the child runs (a short peak between samples is missed).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in (task / "children").read_text().split())
    return out


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str], env: dict[str, str], interval: float = 0.1) -> tuple[Any, float]:
    """Run ``cmd``; its CompletedProcess-like result (returncode, stdout, stderr) and the peak PSS in MB of
    the process and all its descendants (0 where /proc has no smaps_rollup)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    peak = 0
    out: list[str] = []
    err: list[str] = []
    import threading

    readers = [threading.Thread(target=lambda s=s, b=b: b.append(s.read()), daemon=True)
               for s, b in ((proc.stdout, out), (proc.stderr, err))]
    for r in readers:
        r.start()
    while proc.poll() is None:
        peak = max(peak, sum(_pss_kib(p) for p in _tree(proc.pid)))
        time.sleep(interval)
    for r in readers:
        r.join()
    done = subprocess.CompletedProcess(cmd, proc.returncode, "".join(out), "".join(err))
    return done, peak / 1024
