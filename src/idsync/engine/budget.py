"""A time limit on the expressions of one record, without a process per record.

An expression may loop for hours (``sum(1 for a in range(10**5) for b in
range(10**5))``). Tracing every line to watch the clock would slow every
record down; instead one watchdog thread per process looks, every
:data:`TICK` seconds, at the threads evaluating a record, and raises
:class:`TimeLimitExceeded` in one whose deadline has passed (CPython's
``PyThreadState_SetAsyncExc``). The exception is delivered between two steps
of Python code, so it stops any loop; one long step done in C is not
interrupted, which is why the operations that could make one are bounded in
size first (:mod:`idsync.engine.bounds`).

The evaluating thread pays about a microsecond per record to arm and disarm
its deadline, and nothing for records whose job has no expression, since
the mapper only arms for expressions. Arming nests: a record's mappings and
the expressions inside share the record's deadline.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from idsync import settings
from idsync.errors import ConfigError

P = ParamSpec("P")
T = TypeVar("T")

TICK = 0.05
"""How often the watchdog looks at the deadlines, in seconds."""


class TimeLimitExceeded(BaseException):
    """Raised into a thread whose record ran past its deadline.

    A BaseException, so that no ``except Exception`` between the expression and
    the evaluator (in a helper, a key function of ``sorted``...) can swallow it.
    """


def time_limit() -> float:
    """``IDSYNC_RECORD_TIME_LIMIT_SECONDS``, checked."""
    value = settings.get_float("record_time_limit_seconds")
    if not value > 0:
        raise ConfigError(f"IDSYNC_RECORD_TIME_LIMIT_SECONDS must be more than 0 (got {value})")
    return value


class _Slot:
    """One thread's deadline.

    ``depth`` says whether a deadline is armed; ``shooting`` is set while the
    watchdog decides and shoots, so that disarming can wait for it and cancel
    a shot not delivered yet (see :func:`_disarm`).
    """

    __slots__ = ("deadline", "depth", "fired", "shooting", "thread_id")

    def __init__(self, thread_id: int) -> None:
        self.thread_id = thread_id
        self.deadline = 0.0
        self.depth = 0
        self.fired = False
        self.shooting = False


_slots: dict[int, _Slot] = {}
_local = threading.local()
_wake = threading.Event()
_started = threading.Lock()
_watchdog: threading.Thread | None = None
_awake = False
_last_armed = 0.0

IDLE = 1.0
"""Seconds without any deadline armed after which the watchdog sleeps until the next one."""


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc is not None else ctypes.c_void_p(None)
    )


def _watch() -> None:
    global _awake
    while True:
        _wake.wait()
        armed = False
        now = time.monotonic()
        for slot in list(_slots.values()):
            if not slot.depth:
                continue
            armed = True
            if now >= slot.deadline and not slot.fired:
                slot.shooting = True
                try:
                    if slot.depth and not slot.fired:
                        slot.fired = True
                        _set_async_exc(slot.thread_id, TimeLimitExceeded)
                finally:
                    slot.shooting = False
        if not armed and now - _last_armed > IDLE:
            _awake = False
            _wake.clear()
            # A thread may have armed meanwhile, seeing the watchdog still awake: look once more.
            if any(s.depth for s in list(_slots.values())):
                _awake = True
                _wake.set()
        time.sleep(TICK)


def _slot() -> _Slot:
    slot: _Slot | None = getattr(_local, "slot", None)
    if slot is None:
        global _watchdog
        slot = _Slot(threading.get_ident())
        _local.slot = slot
        with _started:
            # Slots of threads that ended are dropped (their ids may be reused).
            alive = {t.ident for t in threading.enumerate()}
            for ident in [i for i in _slots if i not in alive]:
                _slots.pop(ident, None)
            _slots[slot.thread_id] = slot
            if _watchdog is None:
                _watchdog = threading.Thread(target=_watch, name="idsync-record-watchdog", daemon=True)
                _watchdog.start()
    return slot


def _arm(seconds: float) -> _Slot | None:
    slot = _slot()
    if slot.depth:
        return None  # inside another deadline: that one holds
    global _awake, _last_armed
    now = time.monotonic()
    slot.fired = False
    slot.deadline = now + seconds
    slot.depth = 1
    _last_armed = now
    if not _awake:  # read after depth is set: see the watchdog's last look
        _awake = True
        _wake.set()
    return slot


def _disarm(slot: _Slot) -> None:
    """Disarm *slot*; a shot fired but not delivered yet is cancelled. The
    shot may still be delivered while this runs: it is then raised here, and
    calling this again (from the handler) is safe, as nothing is pending then."""
    slot.depth = 0
    if slot.fired or slot.shooting:
        while slot.shooting:
            time.sleep(0)
        _set_async_exc(slot.thread_id, None)


def within(seconds: float, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args)`` with a deadline *seconds* from now: past it,
    :class:`TimeLimitExceeded` is raised inside *fn* (and only there, or in
    this function's own return path). Inside another deadline, the outer one
    holds."""
    slot = _arm(seconds)
    if slot is None:
        return fn(*args, **kwargs)
    try:
        try:
            return fn(*args, **kwargs)
        finally:
            _disarm(slot)
    except TimeLimitExceeded:
        _disarm(slot)
        raise
