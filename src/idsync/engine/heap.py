"""Keeping Python's cyclic garbage collector out of a run's way.

A run allocates a few short-lived objects per record, and every few hundred
allocations the collector runs; each of its full passes walks every object
alive: the modules and definitions loaded before the run and, above all, the
destination index (an object or more per entry in scope). On a no-change run
over 20,000 entries those passes were a quarter of the run's time; they only
grow with the scope. Nothing a run builds for its whole length holds a
reference cycle, so there is nothing for those passes to find:

- :func:`frozen_heap`, around a whole run, moves what exists when it starts
  out of the collector's sight (``gc.freeze``) and puts it back at the end;
- :func:`collector_paused`, around building a structure without cycles (the
  destination index), pauses the collector, and afterwards adds what was built
  to the frozen objects when a run froze them.

Objects keep being freed the ordinary way, by reference counting; the
collector still runs for what a run allocates after. Like the collector
itself, both are process-wide: they are counted, so runs in several threads
nest, and the heap is put back and the collector resumed only when the last
of them ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_frozen = 0  # runs inside frozen_heap()
_paused = 0  # blocks inside collector_paused()
_was_enabled = False  # the collector's state when the first pause began


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Leave the objects alive now out of the collector's passes until the block ends."""
    global _frozen
    with _lock:
        _frozen += 1
        gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _frozen -= 1
            if _frozen == 0:
                gc.unfreeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the collector while building objects without reference cycles;
    inside :func:`frozen_heap`, they join the frozen objects afterwards."""
    global _paused, _was_enabled
    with _lock:
        if _paused == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0 and _was_enabled:
                gc.enable()
            if _frozen:
                gc.freeze()
