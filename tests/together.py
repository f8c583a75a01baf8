"""Processes that really start together, for tests of races between processes.

Starting processes one after another and sleeping a moment does not make
them race: on a busy machine each may still be importing when the others
have finished, so the "race" runs one process at a time. Here each child
does its preparation (imports, opening connections), then writes its own
*ready* file and waits for the *go* file; the parent creates the go file
only once every ready file exists. Both waits have a timeout, so a child
that dies or hangs fails the test instead of blocking it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

_HELD = """\
import sys, time
from pathlib import Path
_ready, _go, _timeout = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
del sys.argv[1:4]
{prepare}
_ready.touch()
_deadline = time.monotonic() + _timeout
while not _go.exists():
    if time.monotonic() > _deadline:
        sys.exit(f"no go signal within {{_timeout}} s")
    time.sleep(0.001)
{run}
"""


class StartLine:
    """Children held at a start line in *folder* until :meth:`go`."""

    def __init__(self, folder: Path, timeout: float = 60.0) -> None:
        self.folder = folder
        self.timeout = timeout
        self.go_file = folder / "go"
        self.children: list[tuple[subprocess.Popen[str], Path]] = []
        folder.mkdir(parents=True, exist_ok=True)

    def start(self, prepare: str, run: str, args: list[str] | tuple[str, ...] = (), **popen: Any) -> subprocess.Popen[str]:
        """A Python child running *prepare*, then (after the go) *run*, with
        ``sys.argv[1:]`` set to *args*. *popen* goes to :class:`subprocess.Popen`
        (``stderr=subprocess.PIPE`` unless given)."""
        ready = self.folder / f"ready-{len(self.children)}"
        code = _HELD.format(prepare=textwrap.dedent(prepare), run=textwrap.dedent(run))
        popen.setdefault("stderr", subprocess.PIPE)
        popen.setdefault("text", True)
        process = subprocess.Popen(
            [sys.executable, "-c", code, str(ready), str(self.go_file), str(self.timeout), *args], **popen
        )
        self.children.append((process, ready))
        return process

    def go(self) -> None:
        """Wait until every child is ready, then let them all go at once."""
        deadline = time.monotonic() + self.timeout
        waiting = list(self.children)
        while waiting:
            for process, ready in list(waiting):
                if ready.exists():
                    waiting.remove((process, ready))
                elif process.poll() is not None:
                    err = process.stderr.read() if process.stderr else ""
                    raise AssertionError(f"a child exited ({process.returncode}) before it was ready: {err}")
            assert time.monotonic() < deadline, f"{len(waiting)} children not ready within {self.timeout} s"
            time.sleep(0.005)
        self.go_file.touch()
