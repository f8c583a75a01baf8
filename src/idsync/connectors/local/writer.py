"""The embedded directory's writer process: a load on two cores.

Against an LDAP server, idsync plans on one core while the server stores on
the other. An embedded directory does both in idsync's process, and Python
runs one thread at a time, so a load, past its first few thousand changes,
hands the storing to a process of its own: this process prepares each
batch (checks new entries against the schema) and sends it; the writer
stores it in one transaction and answers with the failures once it is
committed, while this process prepares the next ones.

Nothing changes for crash safety: the writer commits whole batches, exits
when this process closes the connection, and is killed with it (Linux's
parent-death signal), so a batch is never committed after its sender died.
Outcomes are reported only for committed batches.

``python -m idsync.connectors.local.writer FD PARENT_PID`` is the writer's
side; :class:`WriterProcess` starts and talks to it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import tempfile
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import idsync
from idsync.errors import ConnectorError, IdsyncError, TransientError

if TYPE_CHECKING:
    from idsync.connectors.local.directory import Failure, Prepared

_PR_SET_PDEATHSIG = 1
_STOP_SECONDS = 60.0
"""How long closing waits for the writer to finish the batches it holds."""


class WriterProcess:
    """A writer process for one :meth:`LocalDirectory.apply`; :meth:`close` ends it."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._path = config["path"]
        ours, theirs = Pipe(duplex=True)  # a socket pair: each end reads and writes
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close(); a file, as a pipe could fill and stall it
        root = str(Path(idsync.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        try:
            self._process = subprocess.Popen(  # noqa: S603 - this interpreter and a module of ours
                [sys.executable, "-m", "idsync.connectors.local.writer", str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=self._stderr, env=env,
            )
        except OSError as exc:
            ours.close()
            self._stderr.close()
            raise ConnectorError(f"embedded directory {self._path}: cannot start its writer process: {exc}") from exc
        finally:
            theirs.close()
        self._conn = ours
        self.pid = self._process.pid
        self._ready = False
        self.send(config)

    def ready(self) -> bool:
        """Whether the writer has opened the file, without waiting for it;
        raises what it met opening it."""
        if not self._ready:
            try:
                if not self._conn.poll():
                    return False
            except OSError as exc:
                raise self._died() from exc
            self._answer("ready")
            self._ready = True
        return True

    def send(self, message: Any) -> None:
        try:
            self._conn.send(message)
        except OSError as exc:
            raise self._died() from exc

    def receive(self) -> list[tuple[int, Failure]]:
        """The failures of the next batch sent, once the writer has committed it."""
        if not self._ready:
            self._answer("ready")
            self._ready = True
        failures: list[tuple[int, Failure]] = self._answer("done")
        return failures

    def _answer(self, expected: str) -> Any:
        """The next answer, of kind *expected*; the writer's failure raised as its error."""
        try:
            message = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise self._died() from exc
        if message[0] == expected:
            return message[1] if len(message) > 1 else None
        transient, text = message[1], message[2]
        raise (TransientError if transient else ConnectorError)(text)

    def _died(self) -> ConnectorError:
        """The error for a writer that is gone (or whose connection broke: it is killed)."""
        try:
            code = self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            code = self._process.wait()
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        said = f": {lines[-1]}" if lines else ""
        return ConnectorError(f"embedded directory {self._path}: its writer process ended (exit code {code}){said}")

    def close(self) -> None:
        """Let the writer finish what it holds and exit; kill it if it does not."""
        self._conn.close()
        try:
            self._process.wait(timeout=_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._stderr.close()


def _die_with_parent(parent: int) -> None:
    """Be killed when the process that started this one dies (Linux), so no
    batch is committed after its sender is gone; exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def main(argv: list[str]) -> int:
    """The writer's side: open the directory, then store each batch received
    until the connection closes."""
    fd, parent = int(argv[0]), int(argv[1])
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the sender, which closes the connection
    from idsync.connectors.local.directory import LocalDirectory  # here: it imports this module

    conn = Connection(fd)
    config = conn.recv()

    try:
        directory = LocalDirectory(
            Path(config["path"]), config["suffix"], schema_files=[Path(p) for p in config["schema_files"]],
            indexed_attributes=config["indexed"], writer_after=None,
        )
    except IdsyncError as exc:
        conn.send(("failed", isinstance(exc, TransientError), exc.message))
        return 1
    conn.send(("ready",))
    with directory:
        while True:
            try:
                items: list[tuple[int, Prepared]] = conn.recv()
            except EOFError:
                return 0
            try:
                failures = directory.write_batch(items)
            except IdsyncError as exc:
                conn.send(("failed", isinstance(exc, TransientError), exc.message))
                return 1
            conn.send(("done", failures))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
