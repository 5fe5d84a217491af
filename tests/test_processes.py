"""service.processes: what serve uses to stop granian and everything under it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from service.processes import descendants, pid_alive

# Starts a child running the same code with one less level, then sleeps: with 2 levels,
# a parent, its child and a grandchild, like granian, its worker and an image worker.
TREE = """
import subprocess, sys, time
if int(sys.argv[1]) > 0:
    subprocess.Popen([sys.executable, "-c", sys.argv[2], str(int(sys.argv[1]) - 1), sys.argv[2]])
time.sleep(600)
"""


def test_descendants_finds_grandchildren_so_none_is_left_when_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", TREE, "2", TREE])
    try:
        deadline = time.monotonic() + 120  # only against a hang: the tree's start is awaited
        while len(found := descendants(parent.pid)) < 2:
            assert time.monotonic() < deadline, found
            assert parent.poll() is None
            time.sleep(0.05)
        assert parent.pid not in found and os.getpid() not in found
        for pid in [*found, parent.pid]:
            os.kill(pid, signal.SIGKILL)
        parent.wait()
        while any(pid_alive(pid) for pid in found):  # reaped by init once orphaned
            assert time.monotonic() < deadline, [p for p in found if pid_alive(p)]
            time.sleep(0.05)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_a_pid_that_does_not_exist_has_no_descendants() -> None:
    assert descendants(2**22 + 12345) == []  # no such pid
