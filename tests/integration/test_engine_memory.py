"""The planner streams the source: memory follows the destination index, not the source."""

from __future__ import annotations

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
from tests.memory import LARGE, SMALL, traced_peak

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


JOB = JobDefinition.model_validate({
    "name": "wide", "source": "s",
    "destination": {"store": "d", "container": "dc=example,dc=org"},
    "mappings": [
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "description", "from": "notes"},
    ],
})


def wide_source(folder: Path, rows: int) -> Path:
    """A CSV of *rows* rows of ~1 KB each."""
    path = folder / f"wide-{rows}.csv"
    with path.open("w", encoding="utf-8") as out:
        out.write("id,notes\n")
        for i in range(rows):
            out.write(f"{i},{WIDE}\n")
    return path


def preview(source: Path, directory: LocalDirectory) -> tuple[Counts, CountingRecorder]:
    recorder = CountingRecorder()
    planner = Planner(JOB, CsvReader(source), directory, RunContext.create("wide"))
    return runner.preview(planner, recorder, batch_size=500), recorder


def test_planning_a_large_source_does_not_hold_it(tmp_path: Path) -> None:
    small, large = wide_source(tmp_path, SMALL), wide_source(tmp_path, LARGE)
    extra_bytes = large.stat().st_size - small.stat().st_size
    directory = LocalDirectory(tmp_path / "dir.db")
    preview(small, directory)  # first use: caches, compiled mappings
    small_peak, _ = traced_peak(lambda: preview(small, directory))
    large_peak, (counts, recorder) = traced_peak(lambda: preview(large, directory))
    assert counts.read == LARGE and recorder.changes_seen == LARGE
    # The planner keeps a key per new object (~120 bytes) and one batch of
    # changes, never the rows (~1 KB each): 6,000 more rows add far less
    # than a quarter of their size.
    growth = large_peak - small_peak
    assert growth < extra_bytes / 4, f"{growth:,} bytes more for {extra_bytes:,} more bytes of source"
