"""S1: how long the ``idsync`` command takes to start, against a bare Python.

Every command a user types pays the start-up before it does anything, so
``idsync --help`` and ``idsync store list`` (on an empty database) are timed
as a user runs them: the console script as a process of its own, in a fresh
IDSYNC_HOME. Each command runs once untimed first, so its bytecode is cached
and the database exists (migrated, empty); then the three commands are timed
in turn, ``runs`` times, and the median of each is kept. ``python -c pass``
timed in the same rounds is the floor no command can go below on this
machine; the ratio to it is what compares between machines.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.workloads import Row

HELP_TARGET_S = 0.3
STORE_LIST_TARGET_S = 0.5


def idsync_command() -> list[str]:
    """The ``idsync`` console script beside this Python (what users run), else ``python -m idsync``."""
    script = Path(sys.executable).with_name("idsync")
    return [str(script)] if script.exists() else [sys.executable, "-m", "idsync"]


def startup_environment(home: Path) -> dict[str, str]:
    """This process's environment with its own IDSYNC_HOME (and no other IDSYNC_ setting),
    bytecode written and read as usual."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_") and k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"IDSYNC_HOME": str(home)}


def seconds_of(argv: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one run of *argv*, which must succeed."""
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return elapsed


def startup(workdir: Path, runs: int = 10) -> tuple[list[Row], dict[str, Any]]:
    """S1's rows and figures, measured in a fresh home under *workdir*."""
    home = workdir / "startup-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = startup_environment(home)
    idsync = idsync_command()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "idsync --help": [*idsync, "--help"],
        "idsync store list": [*idsync, "store", "list"],
    }
    for argv in commands.values():  # bytecode cached, the database created
        seconds_of(argv, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):  # in turn, so a change of load meanwhile touches all three alike
        for name, argv in commands.items():
            times[name].append(seconds_of(argv, env))
    median = {name: statistics.median(values) for name, values in times.items()}
    floor = median["python -c pass"]
    rows = [
        Row("S1", f"{name} seconds vs python -c pass", median[name], floor, median[name] / floor,
            f"≤ {target} s", median[name] <= target, digits=3)
        for name, target in (("idsync --help", HELP_TARGET_S), ("idsync store list", STORE_LIST_TARGET_S))
    ]
    figures = {
        "runs": runs, "command": idsync, "median_s": median,
        "targets_s": {"idsync --help": HELP_TARGET_S, "idsync store list": STORE_LIST_TARGET_S},
        "all_s": times,
    }
    return rows, figures
