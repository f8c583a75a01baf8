"""Helpers for tests of file sources."""

from __future__ import annotations

import os
from pathlib import Path


def open_fds_to(path: Path) -> int:
    """How many file descriptors of this process are open on *path* (a source must leave none)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                count += 1
        except OSError:
            continue
    return count
