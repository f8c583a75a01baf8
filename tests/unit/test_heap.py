"""The garbage collector is paused and the heap frozen only while runs need it, however they nest."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from idsync.engine.heap import collector_paused, frozen_heap


@pytest.fixture(autouse=True)
def clean_collector() -> Iterator[None]:
    """Each test starts, and leaves the process, with the collector on and nothing frozen."""
    gc.unfreeze()
    gc.enable()
    yield
    gc.unfreeze()
    gc.enable()


def test_a_run_freezes_what_exists_and_puts_it_back() -> None:
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > 0 and gc.isenabled()
        with frozen_heap():  # a run inside a run (a checked run previews, then applies)
            pass
        assert gc.get_freeze_count() >= frozen  # the inner end did not put the heap back
    assert gc.get_freeze_count() == 0


def test_a_pause_stops_the_collector_and_freezes_what_was_built_inside_a_run() -> None:
    with frozen_heap():
        frozen = gc.get_freeze_count()
        with collector_paused():
            assert not gc.isenabled()
            index = [[f"uid={i}"] for i in range(1000)]  # lists: objects the collector tracks
            with collector_paused():
                pass
            assert not gc.isenabled()  # the inner end did not resume it
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(index)
    assert gc.get_freeze_count() == 0


def test_a_pause_outside_a_run_freezes_nothing_and_keeps_a_disabled_collector_disabled() -> None:
    with collector_paused():
        pass
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_cyclic_garbage_made_during_a_run_is_still_collected() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with frozen_heap():
        gc.collect()
        Node()  # garbage with a cycle, allocated after the freeze
        assert gc.collect() >= 1


def test_runs_in_threads_end_with_the_heap_put_back() -> None:
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        with frozen_heap(), collector_paused():
            [object() for _ in range(100)]

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gc.get_freeze_count() == 0 and gc.isenabled()
