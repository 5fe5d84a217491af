"""Whether a process is still there, by pid: for files and servers named after the process
that made them (the upload folder's temp files, the embedded servers' pid files).

Standard library only (service.devstack, which uses it, promises that)."""

from __future__ import annotations

import os
from pathlib import Path


def pid_exists(pid: int) -> bool:
    """True if ``pid`` exists, zombies included."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return True


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie (killed, not yet reaped: dead too)."""
    if not pid_exists(pid):
        return False
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs (macOS): trust kill(0)
    # "pid (comm) STATE ...": comm may contain spaces and parens, so split after the last ')'.
    return stat_line.rpartition(")")[2].split()[:1] != ["Z"]


def descendants(pid: int) -> list[int]:
    """The processes under ``pid`` (children, theirs, ...), from /proc; [] without it."""
    parents: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for name in entries:
        try:
            stat_line = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue  # ended while we looked
        ppid = int(stat_line.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
