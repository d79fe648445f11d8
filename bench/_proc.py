"""CPU-seconds of process trees from /proc (Linux; no psutil in the environment).

A tree's figure is, over the root and every live descendant, user + system time plus the time of children
already reaped (``cutime``/``cstime``): a PostgreSQL backend that exits is folded into the postmaster when it is
reaped, so the sum keeps counting it. Differences of two readings are what a stretch of time cost.
"""

from __future__ import annotations

import os
from collections import defaultdict

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:  # gone meanwhile
        return None
    # comm (field 2) may hold spaces and parentheses: split after its last ')'.
    return text[text.rindex(")") + 2 :].split()


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat(int(name))) is not None:
            tree[int(fields[1])].append(int(name))  # fields[1] = ppid (field 4 of stat)
    return tree


def tree_cpu_seconds(*roots: int) -> float:
    """CPU seconds used so far by each root process and its descendants (a root that is gone counts 0)."""
    tree = _children()
    seen: set[int] = set()
    total = 0
    stack = [pid for pid in roots if pid]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        fields = _stat(pid)
        if fields is None:
            continue
        # utime, stime, cutime, cstime are stat fields 14-17 (indices 11-14 after comm).
        total += sum(int(v) for v in fields[11:15])
        stack.extend(tree.get(pid, ()))
    return total / _TICK


def self_cpu_seconds() -> float:
    """This process's CPU seconds, all threads (the reading bench code running in it also counts)."""
    times = os.times()
    return times.user + times.system
