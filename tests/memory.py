"""Whether reading a stream takes memory that grows with the stream.

A stream read in bounded memory peaks at the same height whatever its
length; one that keeps what it read grows by hundreds of bytes a row. So
two reads of small inputs, one four times the other, tell them apart: the
difference of their peaks is a few kilobytes for a bounded read and
megabytes for a growing one. Small inputs keep the tests fast (tracemalloc
slows allocation-heavy code several times over).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")

SMALL, LARGE = 2_000, 8_000
"""The two sizes (rows) the memory tests compare."""


def traced_peak(work: Callable[[], T]) -> tuple[int, T]:
    """The peak of memory allocated while *work* runs (in bytes), and its result.
    *work* should open what it reads itself, so opening is measured too."""
    gc.collect()
    tracemalloc.start()
    try:
        result = work()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, result


def drain(items: Iterable[T]) -> tuple[int, T | None]:
    """Read *items* to the end keeping none: how many there were, and the last."""
    count, last = 0, None
    for last in items:  # noqa: B007 - the last one is the point
        count += 1
    return count, last
