"""A held job of a collection run, released later.

A job of a collection run that stops at a safety limit writes nothing: its
run is *held* and so is the collection run. Applying the held plan (a job
run of that plan) releases it. The held job run then takes the release's
outcome, the collection run's state is worked out again from its job runs,
and the collection's recipients get a message about the release, all in
the transaction that records the release's result.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from idsync.domain.results import Counts, RunState
from idsync.services import notifications
from idsync.services.workspace import Workspace
from idsync.store.runs_repo import RunRepository, RunRow

_APPLIED = (RunState.SUCCEEDED, RunState.COMPLETED_WITH_ERRORS)


def collection_outcome(children: Sequence[RunRow]) -> tuple[RunState, Counts, str | None]:
    """The state, counts and cause of a collection run from its job runs:
    failed before held, held before completed with errors, else succeeded."""
    counts = Counts()
    for child in children:
        counts.add(child.counts)
    failed = [f"{_noun(c)} {c.job_name!r} failed: {c.error}" for c in children if c.state is RunState.FAILED]
    held = [f"{_noun(c)} {c.job_name!r} held: {c.error}" for c in children if c.state is RunState.HELD]
    if failed:
        return RunState.FAILED, counts, "; ".join(failed + held)
    if held:
        return RunState.HELD, counts, "; ".join(held)
    if any(c.state is RunState.COMPLETED_WITH_ERRORS for c in children):
        return RunState.COMPLETED_WITH_ERRORS, counts, None
    return RunState.SUCCEEDED, counts, None


def _noun(child: RunRow) -> str:
    return "smart group update job" if child.kind == "smartgroup" else "job"


def settle(ws: Workspace, session: Session, plan_id: int, release: RunRow) -> int | None:
    """Job run *release* applied plan *plan_id*: if a collection run's job
    was held on that plan, record the release there and notify; the
    collection run's id, or None when the plan held no collection run."""
    if release.state not in _APPLIED:
        return None
    runs = RunRepository(session)
    held = runs.held_for_plan(plan_id)
    if held is None or held.parent_run_id is None:
        return None
    parent = runs.require(held.parent_run_id)
    note = f"released: run {release.id} applied plan {plan_id}"
    runs.settle(held.id, release.state, release.counts, note)
    runs.log(held.id, "info", f"{note} ({release.state.value})")
    if parent.state in (RunState.HELD, RunState.COMPLETED_WITH_ERRORS):
        state, counts, error = collection_outcome(runs.children(parent.id))
        runs.settle(parent.id, state, counts, error)
    else:
        state = parent.state
    runs.log(
        parent.id, "info",
        f"{_noun(held)} {held.job_name!r} released: run {release.id} applied plan {plan_id}; the collection run is {state.value}",
    )
    notifications.enqueue_run(ws, session, parent.id, released_by=release.id)
    return parent.id
