"""A run asks whether to stop while it reads records, not only between
batches: records that take long (or change nothing) cannot keep a stop
request waiting for the end of a batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsync.connectors.csv import CsvReader
from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import ChangeOp
from idsync.domain.entry import Scope
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.planner import Planner
from idsync.errors import RunTerminated
from tests.jobs import job_definition
from tests.unit.test_engine import PEOPLE, ListRecorder
from tests.unit.test_engine import directory as directory

JOB = job_definition(
    [
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "sn", "from": "last"},
        {"attribute": "cn", "from": "last"},
    ],
    PEOPLE,
)


def source(tmp_path: Path, count: int) -> CsvReader:
    path = tmp_path / "people.csv"
    path.write_text("id,last\n" + "".join(f"{i},L{i}\n" for i in range(count)), encoding="utf-8")
    return CsvReader(path)


class StopAfter:
    """Asks to stop from its *n*-th question on; counts the records read meanwhile."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.asked = 0

    def __call__(self) -> str | None:
        self.asked += 1
        return "terminated by tester" if self.asked >= self.n else None


@pytest.mark.parametrize("mode", ["run", "preview", "checked"])
def test_a_stop_is_seen_between_records_of_one_batch(
    tmp_path: Path, directory: LocalDirectory, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setattr(runner, "STOP_CHECK_SECONDS", 0.0)  # ask at every record
    planner = Planner(JOB, source(tmp_path, 50), directory, RunContext.create(JOB.name))
    recorder = ListRecorder()
    stop = StopAfter(3)
    with pytest.raises(RunTerminated, match="terminated by tester"):
        if mode == "run":
            runner.run(planner, directory, recorder, batch_size=1000, should_stop=stop)
        elif mode == "preview":
            runner.preview(planner, recorder, batch_size=1000, should_stop=stop)
        else:
            runner.run_checked(planner, directory, recorder, list, lambda p: None, 1000, stop)
    assert planner.counts.read == 2  # stopped within its first batch, before the third record
    # A streaming run wrote and recorded the two records before the stop; planning alone wrote nothing.
    written = len(list(directory.search(PEOPLE, Scope.ONE, "(uid=*)", ["uid"])))
    if mode == "run":
        assert [c.op for c in recorder.planned] == [ChangeOp.CREATE] * 2 and written == 2
    else:
        assert written == 0
    assert isinstance(planner.source, CsvReader)  # the planner's own source again


def test_without_a_stop_check_a_run_reads_its_records_as_before(tmp_path: Path, directory: LocalDirectory) -> None:
    planner = Planner(JOB, source(tmp_path, 5), directory, RunContext.create(JOB.name))
    counts = runner.run(planner, directory, ListRecorder(), batch_size=1000)
    assert counts.created == 5
