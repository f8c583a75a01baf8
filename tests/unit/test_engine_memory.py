"""The planner streams the source: memory follows the destination index, not the source."""

from __future__ import annotations

import tracemalloc
from collections.abc import Sequence
from pathlib import Path

from idsync.connectors.csv import CsvReader
from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import Change
from idsync.domain.definitions import JobDefinition
from idsync.domain.results import Counts, ErrorItem
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.planner import Planner

ROWS = 20_000
WIDE = "x" * 1_000


class CountingRecorder:
    """Keeps only counts, as a database recorder keeps nothing in memory."""

    def __init__(self) -> None:
        self.changes_seen = 0

    def changes(self, batch: Sequence[Change]) -> None:
        self.changes_seen += len(batch)

    def errors(self, items: Sequence[ErrorItem]) -> None:
        pass

    def progress(self, counts: Counts) -> None:
        pass


def test_planning_a_large_source_does_not_hold_it(tmp_path: Path) -> None:
    source_path = tmp_path / "wide.csv"
    with source_path.open("w", encoding="utf-8") as out:
        out.write("id,notes\n")
        for i in range(ROWS):
            out.write(f"{i},{WIDE}\n")
    size = source_path.stat().st_size
    assert size > 20_000_000
    job = JobDefinition.model_validate({
        "name": "wide", "source": "s",
        "destination": {"store": "d", "container": "dc=example,dc=org"},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "description", "from": "notes"},
        ],
    })
    directory = LocalDirectory(tmp_path / "dir.db")
    recorder = CountingRecorder()
    planner = Planner(job, CsvReader(source_path), directory, RunContext.create("wide"))
    tracemalloc.start()
    try:
        counts = runner.preview(planner, recorder, batch_size=500)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts.read == ROWS and recorder.changes_seen == ROWS
    # The source is ~20 MB; the planner keeps a key per new object and one batch of changes.
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte source"
