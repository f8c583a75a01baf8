"""Stored plans applied to a real slapd through the service layer: changes
made since the preview are left untouched, the source is not read again, and
a plan applied again after a failure writes nothing twice."""

from __future__ import annotations

from pathlib import Path

import ldap
import pytest

from idsync.connectors.base import ApplyOutcome
from idsync.domain.changes import Change
from idsync.domain.results import RunState
from idsync.errors import TransientError
from idsync.services import history, job_features, jobs
from idsync.services.workspace import Workspace
from tests.integration.test_sync_slapd import add_job, add_source, add_store, people, ws
from tests.servers.slapd import SlapdServer, operation_counts, write_count

__all__ = ["ws"]


def entry(slapd: SlapdServer, dn: str) -> dict[str, list[bytes]]:
    conn = slapd.connect()
    try:
        return dict(conn.search_s(dn, ldap.SCOPE_BASE)[0][1])
    finally:
        conn.unbind_s()


def edit(slapd: SlapdServer, dn: str, attribute: str, value: str) -> None:
    conn = slapd.connect()
    try:
        conn.modify_s(dn, [(ldap.MOD_REPLACE, attribute, [value.encode()])])
    finally:
        conn.unbind_s()


def test_changes_made_since_the_preview_are_left_untouched(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", people(10))
    add_job(ws, container)
    assert jobs.run_job(ws, "people").counts.created == 10
    rows = [row.replace("@Example.org", "@new.example.org") for row in people(10)]
    add_source(ws, tmp_path / "hr.csv", rows)
    plan = jobs.preview_job(ws, "people").plan
    assert plan.counts.updated == 10
    for i in (3, 7):  # someone edits two of them after the preview
        edit(slapd, f"uid=E{i:04d},{container}", "mail", f"edited{i}@example.org")
    (tmp_path / "hr.csv").rename(tmp_path / "hr.csv.gone")  # the source is not needed any more
    writes = write_count(slapd)

    run = jobs.run_job(ws, "people", plan_id=plan.id)
    assert run.state is RunState.COMPLETED_WITH_ERRORS
    assert (run.counts.updated, run.counts.conflicts, run.counts.errors) == (8, 2, 0)
    assert write_count(slapd) == writes + 8
    assert entry(slapd, f"uid=E0003,{container}")["mail"] == [b"edited3@example.org"]
    assert entry(slapd, f"uid=E0004,{container}")["mail"] == [b"user4@new.example.org"]
    report = history.run_report(ws, run.id)
    assert sorted(e.key or "" for e in report.errors) == ["E0003", "E0007"]
    assert all("'mail' changed since the plan was computed" in e.message for e in report.errors)


class LostAfter:
    """An apply step that loses the connection once *limit* changes went by."""

    def __init__(self, limit: int) -> None:
        self.limit, self.seen = limit, 0

    def before(self, change: Change) -> Change:
        self.seen += 1
        if self.seen > self.limit:
            raise TransientError("connection to the directory lost")
        return change

    def after(self, outcome: ApplyOutcome) -> ApplyOutcome:
        return outcome

    def flush(self) -> None:
        pass


def test_a_plan_applied_again_after_a_failure_writes_nothing_twice(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", people(300))
    add_job(ws, container)
    plan = jobs.preview_job(ws, "people").plan
    adds = operation_counts(slapd)["Add"]
    with monkeypatch.context() as patched:
        patched.setattr(job_features, "apply_steps", lambda *_args: [LostAfter(120)])
        failed = jobs.run_job(ws, "people", plan_id=plan.id)
    assert failed.state is RunState.FAILED and failed.counts.created == 120
    assert history.get_plan(ws, plan.id).state == "ready"

    again = jobs.run_job(ws, "people", plan_id=plan.id)
    assert again.state is RunState.SUCCEEDED, again.error
    assert (again.counts.created, again.counts.unchanged, again.counts.errors) == (180, 120, 0)
    assert operation_counts(slapd)["Add"] == adds + 300  # each object added once, no "Already exists"
