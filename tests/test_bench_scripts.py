"""Every benchmark command starts: its module imports and its options parse (--help).

The benchmarks run outside the suite (they measure, they do not assert); this catches a
change to their shared harness that would leave one unable to start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = sorted(p.name for p in (ROOT / "scripts").glob("bench_*"))


def test_every_benchmark_command_is_listed() -> None:
    modules = {p.stem for p in (ROOT / "scripts" / "bench").glob("*.py")}
    assert {c.removeprefix("bench_") for c in COMMANDS} <= modules
    assert len(COMMANDS) >= 6, COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_benchmark_starts_and_explains_its_options(command: str) -> None:
    module = "scripts.bench." + command.removeprefix("bench_")
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: scripts/{command}"), done.stdout[:200]
