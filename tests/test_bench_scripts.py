"""Every benchmark command starts: its module imports and its options parse (--help).

The benchmarks run outside the suite (they measure, they do not assert); this catches a
change to their shared harness that would leave one unable to start. The commands are
found by what they run (``-m scripts.bench.<module>`` in each script of scripts/).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = {
    p.name: m.group(1)
    for p in sorted((ROOT / "scripts").iterdir())
    if p.is_file() and (m := re.search(r"-m (scripts\.bench\.\w+)", p.read_text()))
}


def test_the_benchmark_commands_are_found() -> None:
    assert {"bench_bundle", "bench_load", "bench_photos", "seed_bulk"} <= set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_benchmark_starts_and_explains_its_options(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", COMMANDS[command], "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: scripts/{command}"), done.stdout[:200]
