"""Updating smart groups: write the differences, and record them as a run.

Every update is a run in the runs table, of kind ``smartgroup`` (its name is
the update job's, or the group's for ``smartgroup update GROUP``), with one
row per group in ``smart_group_results``: the outcome (updated, unchanged,
refused by a limit, failed), the member counts and the DNs added and
removed. A refused or failed group is also a record error of the run, so the
run ends ``completed_with_errors`` and says which group and why; a store
that cannot be reached fails the run.

Each group changed is one modify: its new members as value adds, its former
members as value deletes, never a replace. An update job linked to a
collection runs after the collection's jobs, as a child run of the
collection run (:func:`run_linked`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from idsync import settings
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.results import Counts, ErrorItem, RunState
from idsync.domain.roles import Role
from idsync.domain.smartgroups import SmartGroup
from idsync.errors import IdsyncError
from idsync.services import (
    authz,
    notifications,
    releases,
    request_gate,
    smartgroup_notices,
    smartgroups,
)
from idsync.services.smartgroups import GroupPlan
from idsync.services.workspace import Workspace
from idsync.smartgroups.membership import HOLDING_LIMITS
from idsync.store import audit
from idsync.store.leases import Heartbeat, default_node
from idsync.store.plans_repo import PlanRepository
from idsync.store.runs_repo import RunRepository, RunRow
from idsync.store.smartgroups_repo import (
    GroupResult as GroupResult,  # what each update did to a group, for front ends
)
from idsync.store.smartgroups_repo import SmartGroupResultRepository
from idsync.store.tables import utcnow

log = logging.getLogger(__name__)

RUN_KIND = "smartgroup"
HELD = "held"
"""A group's outcome when a limit refused its update and a request holds the change."""
PROBLEMS = ("refused", "failed", HELD)
"""The outcomes that are errors of the run."""


@dataclass
class UpdateReport:
    """An update run and what it did to each group."""

    run: RunRow
    groups: list[GroupResult] = field(default_factory=list)


def update_group(ws: Workspace, name: str, *, trigger: str = "manual") -> UpdateReport:
    """Recompute smart group *name* and write the difference, recorded as a run named after the group."""
    authz.require(ws, Role.OPERATOR, "update smart groups")
    group = smartgroups.load_group(ws, name)
    return _execute(ws, name, [group], trigger=trigger, parent=None)


def run_update_job(ws: Workspace, name: str, *, trigger: str = "manual", parent: RunRow | None = None) -> UpdateReport:
    """Run smart group update job *name*: recompute its groups, write the differences.

    With *parent* (a collection run), the run is its child and shares its trigger."""
    authz.require(ws, Role.OPERATOR, "run smart group update jobs")
    job = smartgroups.load_job(ws, name)
    try:
        groups = smartgroups.job_targets(ws, job)
    except IdsyncError as exc:
        return _failed(ws, name, exc.message, trigger=trigger, parent=parent)
    return _execute(ws, name, groups, trigger=trigger, parent=parent, notify_owners=job.notify_owners)


def run_linked(ws: Workspace, parent: RunRow, names: Sequence[str]) -> list[UpdateReport]:
    """Run the update jobs a collection links, after its jobs, each as a child run of *parent*.
    A job that cannot even be loaded is recorded failed, and the others still run."""
    reports = []
    for name in names:
        try:
            reports.append(run_update_job(ws, name, trigger=parent.trigger, parent=parent))
        except IdsyncError as exc:
            reports.append(_failed(ws, name, exc.message, trigger=parent.trigger, parent=parent))
    return reports


def results_of(ws: Workspace, run_id: int) -> list[GroupResult]:
    """What update run *run_id* did to each group (none for other runs)."""
    authz.require_reader(ws, "runs")
    with ws.db.session() as session:
        return SmartGroupResultRepository(session).of_run(run_id)


def last_results(ws: Workspace, groups: Sequence[str] | None = None) -> dict[str, tuple[int, GroupResult]]:
    """The last recorded result of each smart group (of *groups*, or all) among
    the recent update runs: group name -> (run id, result); a group not
    updated lately is left out."""
    authz.require_reader(ws, "runs")
    with ws.db.session() as session:
        return SmartGroupResultRepository(session).latest(groups)


def recent_runs(ws: Workspace, name: str, *, limit: int = 20) -> list[RunRow]:
    """The newest update runs named *name* (an update job, or a group updated alone), newest first."""
    authz.require_reader(ws, "runs")
    with ws.db.session() as session:
        return RunRepository(session).list(limit=limit, job_name=name, kind=RUN_KIND)


# ---------------------------------------------------------------- the run


def _create(ws: Workspace, name: str, trigger: str, parent: RunRow | None) -> tuple[int, int | None, timedelta | None]:
    lease = timedelta(seconds=settings.get_int("run_lease_seconds")) if parent is None else None
    with ws.db.session() as session:
        runs = RunRepository(session)
        run_id = runs.create(
            kind=RUN_KIND, job_name=name, job_id=None, trigger=trigger, requested_by=ws.actor,
            parent_run_id=parent.id if parent else None,
            collection_id=parent.collection_id if parent else None,
            collection_name=parent.collection_name if parent else None,
            occurrence_id=parent.occurrence_id if parent else None,
        )
        audit.record(session, actor=ws.actor, action="run.start", object_kind="smart_group_job",
                     object_name=name, detail={"run": run_id, "trigger": trigger})
        fence = runs.start(run_id, node=default_node() if lease else None, lease=lease)
        runs.log(run_id, "info", f"smart group update {name!r} started by {ws.actor}")
    return run_id, fence if lease else None, lease


def _failed(ws: Workspace, name: str, cause: str, *, trigger: str, parent: RunRow | None) -> UpdateReport:
    run_id, _fence, _lease = _create(ws, name, trigger, parent)
    return UpdateReport(_finish(ws, run_id, RunState.FAILED, Counts(), cause, []))


def _execute(
    ws: Workspace, name: str, groups: list[SmartGroup], *, trigger: str, parent: RunRow | None,
    notify_owners: bool = False,
) -> UpdateReport:
    run_id, fence, lease = _create(ws, name, trigger, parent)
    heartbeat = Heartbeat(ws.db, run_id, fence, lease) if fence is not None and lease is not None else None
    results: list[GroupResult] = []
    stopped: list[GroupPlan] = []
    told: list[tuple[str, list[GroupResult], smartgroup_notices.Owners]] = []
    try:
        with heartbeat or nullcontext():
            for store, members in smartgroups.groups_of_stores(groups).items():
                plans = smartgroups.plan_groups(ws, store, members)
                applied = apply_plans(ws, store, plans)
                if parent is None:
                    held = hold(ws, run_id, name, store, plans, parent)
                else:
                    held = keep(ws, run_id, name, store, plans, parent)
                stopped.extend(p for p in plans if _at_limit(p))
                done = [_held(r, held[r.group]) if r.group in held else r for r in applied]
                results.extend(done)
                if notify_owners:
                    told.append((store, done, _owners(ws, store, done)))
    except IdsyncError as exc:
        return UpdateReport(_finish(ws, run_id, RunState.FAILED, _counts(results), exc.message, results), results)
    except BaseException as exc:
        _finish(ws, run_id, RunState.FAILED, _counts(results), f"unexpected error {type(exc).__name__}", results)
        raise
    counts = _counts(results)
    state = RunState.COMPLETED_WITH_ERRORS if counts.errors else RunState.SUCCEEDED
    if not groups:
        state = RunState.SUCCEEDED
    cause = None
    if parent is not None and stopped:
        # In a collection run a group stopped at a limit holds the run, as a job stopped at a limit does.
        state = RunState.HELD
        cause = "held: " + "; ".join(f"smart group {p.group!r}: {p.refused}" for p in stopped)
    report = UpdateReport(_finish(ws, run_id, state, counts, cause, results), results)
    about = parent.collection_name if parent is not None and parent.collection_name else name
    for store, done, owners in told:
        _tell_owners(ws, run_id, name, about, store, done, owners)
    return report


def _owners(ws: Workspace, store: str, results: Sequence[GroupResult]) -> smartgroup_notices.Owners:
    """The owners' addresses of the groups whose owners hear of this run."""
    dns = [r.dn for r in smartgroup_notices.told(results)]
    if not dns:
        return {}
    try:
        _definition, directory = smartgroups.open_store(ws, store)
    except IdsyncError as exc:
        log.warning("smart group owners of store %r not read: %s", store, exc.message)
        return {}  # the groups were written: their owners not hearing of it does not fail the run
    try:
        return smartgroup_notices.owners_of(directory, dns)
    finally:
        directory.close()


def _tell_owners(
    ws: Workspace, run_id: int, name: str, about: str, store: str,
    results: Sequence[GroupResult], owners: smartgroup_notices.Owners,
) -> None:
    """Queue the owners' messages; a problem is logged on the run, never raised."""
    with ws.db.session() as session:
        queued = notifications.never_failing(
            session, run_id, "group owners",
            lambda: smartgroup_notices.enqueue(
                ws, session, run_id=run_id, update=name, about=about, store=store, results=results, owners=owners,
            ),
        )
        if queued:
            RunRepository(session).log(run_id, "info", f"group owners: {queued} message(s) queued")


def changes_for(plans: Sequence[GroupPlan], *, refused: bool = False) -> list[Change]:
    """One modify per group to change: value adds, then value deletes (never a replace).
    Groups refused by a limit are left out, or (*refused*) are the only ones in."""
    out = []
    for plan in plans:
        if plan.error is not None or (plan.refused is not None) is not refused or not plan.changed:
            continue
        mods = []
        if plan.add:
            mods.append(Modification(ModOp.ADD, plan.member_attribute, tuple(plan.add)))
        if plan.remove:
            mods.append(Modification(ModOp.DELETE, plan.member_attribute, tuple(plan.remove)))
        out.append(Change(ChangeOp.UPDATE, plan.dn, key=plan.group, mods=tuple(mods)))
    return out


def apply_plans(ws: Workspace, store: str, plans: Sequence[GroupPlan]) -> list[GroupResult]:
    """Write the changes of *plans* to *store*; one result per plan."""
    changes = changes_for(plans)
    errors: dict[str, str] = {}
    if changes:
        _definition, directory = smartgroups.open_store(ws, store)
        try:
            for outcome in directory.apply(changes):
                if outcome.error is not None:
                    errors[outcome.change.key] = outcome.error.message
        finally:
            directory.close()
    return [_result(plan, errors.get(plan.group)) for plan in plans]


# ---------------------------------------------------------------- held groups become requests


def hold(
    ws: Workspace, run_id: int, name: str, store: str, plans: Sequence[GroupPlan], parent: RunRow | None
) -> dict[str, str]:
    """Groups of *store* refused by ``max_members`` or the percentage guard, when
    the store's workflow covers held runs: their membership changes are stored
    as one plan (a modify per group, as an update writes it) and a request of
    kind held binds it; approving it applies exactly that plan (:func:`release`).
    The note of each group so held, by group name (none when no request was raised)."""
    held = [p for p in plans if _at_limit(p)]
    if not held or request_gate.gate_of_stores(ws, (store,), "held") is None:
        return {}
    changes = changes_for(held, refused=True)
    reason = "; ".join(f"smart group {p.group!r}: {p.refused}" for p in held)
    with ws.db.session() as session:
        run = RunRepository(session).require(run_id)
        requester = request_gate.requester_of(ws, parent if parent is not None else run)
        plans_repo = PlanRepository(session)
        plan_id = plans_repo.create(job_name=name, job_id=None, created_by=ws.actor)
        plans_repo.add_changes(plan_id, changes, 0)
        plans_repo.finish(plan_id, "ready", Counts(read=len(held), updated=len(changes)))
        request_id = request_gate.raise_held_groups(
            ws, session, run_id=run_id, update=name, store=store, plan_id=plan_id, reason=reason,
            requested_by=requester, clock=utcnow,
        )
        if request_id is None:
            plans_repo.delete(plan_id)
            return {}
    return {p.group: f"held for approval by request {request_id}: {p.refused}" for p in held}


def _at_limit(plan: GroupPlan) -> bool:
    """Whether *plan* was stopped by a limit that holds it (max_members, the percentage guard)."""
    return plan.error is None and plan.limit in HOLDING_LIMITS and plan.changed > 0


def keep(
    ws: Workspace, run_id: int, name: str, store: str, plans: Sequence[GroupPlan], parent: RunRow
) -> dict[str, str]:
    """:func:`hold` for an update job run by collection run *parent*: the held
    groups' membership changes are stored as the plan of update run *run_id*,
    and no request is raised here: the collection run ends held, and the
    request its workflow raises (under the collection's name) binds this plan
    with the held plans of its jobs. The note of each group so held."""
    held = [p for p in plans if _at_limit(p)]
    if not held or request_gate.gate_of_stores(ws, (store,), "held") is None:
        return {}
    changes = changes_for(held, refused=True)
    with ws.db.session() as session:
        plans_repo = PlanRepository(session)
        plan_id = plans_repo.create(job_name=name, job_id=None, created_by=ws.actor)
        plans_repo.add_changes(plan_id, changes, 0)
        plans_repo.finish(plan_id, "ready", Counts(read=len(held), updated=len(changes)))
        RunRepository(session).set_plan(run_id, plan_id)
    about = parent.collection_name or parent.job_name
    return {p.group: f"held in plan {plan_id} for the request of collection {about!r}: {p.refused}" for p in held}


def _held(result: GroupResult, note: str) -> GroupResult:
    return GroupResult(result.group, result.dn, HELD, result.members, error=note)


Narrow = Callable[[Change], Change | None]
"""What a request's approvals let through of a group's change: it whole, it
without the members left out, or None (:meth:`idsync.workflow.approvers.ChangeFilter.narrow`)."""


def release(
    ws: Workspace, request_id: int, store: str, plans: Sequence[tuple[str, int | None]],
    narrow: Narrow | None,
) -> RunRow | None:
    """Apply exactly the membership plans a held request binds, letting through
    only the groups (by DN) and members (group DN and member DN) its approvals
    allow: each plan is one run of kind
    smartgroup, trigger ``release``, with one result per group; the last run,
    or None when no plan was ready (applied already: an interrupted execution)."""
    last: RunRow | None = None
    for name, plan_id in plans:
        if plan_id is None:
            continue
        with ws.db.session() as session:
            plan = PlanRepository(session).get(plan_id)
        if plan is None or plan.state != "ready":
            continue
        last = _release_plan(ws, request_id, store, name, plan_id, narrow)
    return last


def release_linked(ws: Workspace, request_id: int, name: str, plan_id: int, narrow: Narrow | None) -> RunRow | None:
    """Apply plan *plan_id*, held by update job *name* in a collection run and
    bound by the collection's request (:func:`keep`): as :func:`release` does,
    then the held update run takes the release's outcome and the collection
    run's state is worked out again (:func:`idsync.services.releases.settle`)."""
    store = smartgroups.load_job(ws, name).store
    run = release(ws, request_id, store, [(name, plan_id)], narrow)
    if run is not None:
        with ws.db.session() as session:
            releases.settle(ws, session, plan_id, run)
    return run


def _release_plan(
    ws: Workspace, request_id: int, store: str, name: str, plan_id: int, narrow: Narrow | None
) -> RunRow:
    run_id, _fence, _lease = _create(ws, name, "release", None)
    try:
        with ws.db.session() as session:
            PlanRepository(session).claim(plan_id, run_id)
            changes = _plan_changes(PlanRepository(session), plan_id)
        let_through = [c if narrow is None else narrow(c) for c in changes]
        chosen = [c for c in let_through if c is not None]
        errors: dict[str, str] = {}
        if chosen:
            _definition, directory = smartgroups.open_store(ws, store)
            try:
                for outcome in directory.apply(chosen):
                    if outcome.error is not None:
                        errors[outcome.change.key] = outcome.error.message
            finally:
                directory.close()
    except IdsyncError as exc:
        return _finish(ws, run_id, RunState.FAILED, Counts(), f"request {request_id}: {exc.message}", [])
    results = [_released(c, n, errors.get(c.key), request_id) for c, n in zip(changes, let_through, strict=True)]
    with ws.db.session() as session:
        PlanRepository(session).mark_applied(plan_id, run_id)
    counts = _counts(results)
    state = RunState.COMPLETED_WITH_ERRORS if any(r.outcome == "failed" for r in results) else RunState.SUCCEEDED
    return _finish(ws, run_id, state, counts, None, results)


def _plan_changes(repo: PlanRepository, plan_id: int) -> list[Change]:
    out: list[Change] = []
    after = -1
    while page := repo.changes(plan_id, after_seq=after):
        out.extend(change for _seq, change in page)
        after = page[-1][0]
    return out


def _released(change: Change, applied: Change | None, error: str | None, request_id: int) -> GroupResult:
    """The result of one group of a released plan: *applied* is what the
    approvals let through of its *change* (None: nothing)."""
    if applied is None:
        return GroupResult(change.key, change.dn, "excluded", 0, error=f"not approved in request {request_id}")
    if error is not None:
        return GroupResult(change.key, change.dn, "failed", 0, error=error)
    added = [v for m in applied.mods if m.op is ModOp.ADD for v in m.values]
    removed = [v for m in applied.mods if m.op is ModOp.DELETE for v in m.values]
    left_out = sum(len(m.values) for m in change.mods) - len(added) - len(removed)
    note = f"{left_out} member change(s) not approved in request {request_id}" if left_out else None
    return GroupResult(change.key, change.dn, "updated", 0, len(added), len(removed), added, removed, error=note)


def _result(plan: GroupPlan, apply_error: str | None) -> GroupResult:
    if plan.error is not None or apply_error is not None:
        return GroupResult(plan.group, plan.dn, "failed", plan.current, error=plan.error or apply_error)
    if plan.refused is not None:
        return GroupResult(plan.group, plan.dn, "refused", plan.current, error=plan.refused)
    if not plan.changed:
        return GroupResult(plan.group, plan.dn, "unchanged", plan.members)
    return GroupResult(
        plan.group, plan.dn, "updated", plan.members, len(plan.add), len(plan.remove), plan.add, plan.remove
    )


def _counts(results: Sequence[GroupResult]) -> Counts:
    """A run's counts in groups: read (recomputed), updated, unchanged, skipped
    (refused by a limit), errors (refused or failed)."""
    counts = Counts(read=len(results))
    for r in results:
        if r.outcome == "updated":
            counts.updated += 1
        elif r.outcome == "unchanged":
            counts.unchanged += 1
        elif r.outcome == "excluded":
            counts.skipped += 1
        else:
            counts.errors += 1
            if r.outcome in ("refused", HELD):
                counts.skipped += 1
    return counts


def _line(result: GroupResult) -> str:
    head = f"group {result.group!r} ({result.dn}): {result.outcome}"
    if result.outcome == "updated" and result.members:
        return f"{head}: {result.added} added, {result.removed} removed, {result.members} member(s)"
    if result.outcome == "updated":
        return f"{head}: {result.added} added, {result.removed} removed"
    if result.error:
        return f"{head}: {result.error}"
    return f"{head}: {result.members} member(s)"


def _finish(
    ws: Workspace, run_id: int, state: RunState, counts: Counts, error: str | None, results: Sequence[GroupResult]
) -> RunRow:
    with ws.db.session() as session:
        runs = RunRepository(session)
        SmartGroupResultRepository(session).add(run_id, results)
        runs.add_errors(run_id, [
            ErrorItem(message=f"smart group {r.group!r}: {r.outcome}: {r.error}", key=r.group, dn=r.dn)
            for r in results if r.outcome in PROBLEMS
        ])
        # A line per group that changed or could not be; the unchanged ones are counted (their results hold them).
        for result in results:
            if result.outcome != "unchanged":
                runs.log(run_id, "warning" if result.outcome in PROBLEMS else "info", _line(result))
        unchanged = sum(1 for r in results if r.outcome == "unchanged")
        if unchanged:
            runs.log(run_id, "info", f"{unchanged} group(s) unchanged")
        if error:
            runs.log(run_id, "error", error)
        runs.log(run_id, "info", f"finished {state.value}: {counts.summary() or 'no group'} (counted in groups)")
        runs.finish(run_id, state, counts, error)
        return runs.require(run_id)
