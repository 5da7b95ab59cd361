"""Memory of a command's whole process tree (its workers included), sampled from /proc."""
from __future__ import annotations

import os


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now (Linux /proc)."""
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            continue  # the process ended while we looked
    return pids


def tree_memory_kb(pids: list[int]) -> tuple[int, int]:
    """(summed RSS, summed PSS) of ``pids`` in kB; PSS counts shared pages once."""
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss
