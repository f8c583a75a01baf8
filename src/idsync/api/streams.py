"""Answers that stream: what a service writes or yields, sent as it comes.

A directory search or an LDIF export can be larger than memory: the
answer is sent as the entries arrive. Its first piece is produced before
the answer starts, so a refusal, an unknown store or a bad filter is still
an error answer (403, 404, 422), not a cut stream.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from itertools import chain
from typing import Any, TextIO

CHUNK_CHARS = 64 * 1024
"""What a writer gathers before handing a piece to the answer."""
QUEUE_PIECES = 16
"""Pieces written ahead of the client: a slow reader slows the writer down."""

_END = object()


def started(items: Iterable[Any]) -> Iterator[Any]:
    """*items* with the first one produced now (its errors are raised here)."""
    it = iter(items)
    for first in it:
        return chain([first], it)
    return iter(())


class _QueueWriter:
    """A text file whose writes go, in pieces, to a bounded queue."""

    def __init__(self, pieces: queue.Queue[Any], cancelled: threading.Event) -> None:
        self._pieces = pieces
        self._cancelled = cancelled
        self._buffer: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= CHUNK_CHARS:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self.put("".join(self._buffer))
            self._buffer, self._size = [], 0

    def put(self, item: Any) -> None:
        while not self._cancelled.is_set():
            try:
                self._pieces.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise _Cancelled


class _Cancelled(Exception):
    """The client went away: the writer stops."""


def written(write: Callable[[TextIO], Any]) -> Iterator[str]:
    """What *write* writes to the file it is given, in pieces, as it writes
    (in a thread of its own); the first piece is waited for here, so an error
    raised before it is raised here. An error after it ends the stream."""
    pieces: queue.Queue[Any] = queue.Queue(QUEUE_PIECES)
    cancelled = threading.Event()

    def work() -> None:
        out = _QueueWriter(pieces, cancelled)
        try:
            write(out)  # type: ignore[arg-type]
            out.flush()
            out.put(_END)
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the reader
            try:
                out.flush()
                out.put(exc)
            except _Cancelled:
                pass

    threading.Thread(target=work, name="api-stream", daemon=True).start()

    def read() -> Iterator[str]:
        try:
            while True:
                item = pieces.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancelled.set()

    return started(read())
