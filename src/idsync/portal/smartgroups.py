"""Smart groups and their update jobs [S8.1, S8.2]: a list of each; a group's
page (its definition, its members at the last update, that update's
result); the members an update would add and remove now (preview); why an
entry is or is not a member (explain); and for operators, the forms that
update a group or run an update job now, which then show the run.

Preview and explain only read: they are GET pages. Updating writes to the
directory: a POST with the session's CSRF token, refused by the services
to anyone but an operator.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, Response

from idsync.domain.smartgroups import SmartGroup
from idsync.errors import ConfigError, NotFoundError
from idsync.portal.web import PortalRoute, Posted, Viewer, Viewing, render, see_other
from idsync.services import definitions, smartgroup_runs, smartgroups
from idsync.services.smartgroup_runs import GroupResult
from idsync.services.smartgroups import MemberExplanation

router = APIRouter(route_class=PortalRoute)

MEMBERS_SHOWN = 200
"""Members to add and to remove listed on a preview; the counts are whole."""
RUNS_SHOWN = 20


@dataclass(frozen=True)
class GroupRow:
    """A smart group in the list, with its last update's result (None: not updated lately)."""

    group: SmartGroup
    run_id: int | None
    last: GroupResult | None


@router.get("/smartgroups")
def list_groups(request: Request, who: Viewing) -> Response:
    groups = smartgroups.list_groups(who.ws)
    last = smartgroup_runs.last_results(who.ws, [g.name for g in groups])
    rows = [GroupRow(g, *last.get(g.name, (None, None))) for g in groups]
    return render(request, "smartgroups.html", who, rows=rows)


@router.get("/smartgroups/{name}")
def show_group(request: Request, who: Viewing, name: str) -> Response:
    group = smartgroups.load_group(who.ws, name)
    run_id, last = smartgroup_runs.last_results(who.ws, [name]).get(name, (None, None))
    return render(request, "smartgroup.html", who, group=group, run_id=run_id, last=last, jobs=_jobs_of(who, name),
                  runs=smartgroup_runs.recent_runs(who.ws, name, limit=RUNS_SHOWN))


def _jobs_of(who: Viewer, name: str) -> list[str]:
    """The update jobs that recompute group *name*."""
    found = []
    for job in smartgroups.list_jobs(who.ws):
        try:
            targets = smartgroups.job_targets(who.ws, job)
        except NotFoundError:
            continue  # the job names a group removed since: its own page says so
        if any(g.name == name for g in targets):
            found.append(job.name)
    return found


@router.get("/smartgroups/{name}/preview")
def preview_group(request: Request, who: Viewing, name: str) -> Response:
    plan = smartgroups.preview_group(who.ws, name)
    return render(request, "smartgroup_preview.html", who, plan=plan, shown=MEMBERS_SHOWN)


@router.get("/smartgroups/{name}/explain")
def explain_member(request: Request, who: Viewing, name: str, dn: str = "") -> Response:
    group = smartgroups.load_group(who.ws, name)
    result: MemberExplanation | None = None
    message = None
    if dn.strip():
        try:
            result = smartgroups.explain_member(who.ws, name, dn.strip())
        except ConfigError as exc:
            message = exc.message + (f" ({exc.hint})" if exc.hint else "")
    status = 422 if message else 200
    return render(request, "smartgroup_explain.html", who, status=status, group=group, dn=dn, result=result,
                  message=message)


@router.post("/smartgroups/{name}/update")
def update_group(request: Request, who: Viewing, form: Posted, name: str) -> Response:
    report = smartgroup_runs.update_group(who.ws, name)
    return see_other(f"/runs/{report.run.id}")


@router.get("/smartgroup-jobs")
def list_jobs(request: Request, who: Viewing) -> Response:
    jobs = smartgroups.list_jobs(who.ws)
    last = {j.name: next(iter(smartgroup_runs.recent_runs(who.ws, j.name, limit=1)), None) for j in jobs}
    return render(request, "smartgroup_jobs.html", who, jobs=jobs, last=last)


@router.get("/smartgroup-jobs/{name}")
def show_job(request: Request, who: Viewing, name: str) -> Response:
    job = smartgroups.load_job(who.ws, name)
    try:
        targets = [g.name for g in smartgroups.job_targets(who.ws, job)]
        problem = None
    except NotFoundError as exc:
        targets, problem = [], exc.message
    linked = [c.name for c in definitions.list_definitions(who.ws, "collection") if name in c.smart_group_jobs]
    return render(request, "smartgroup_job.html", who, job=job, targets=targets, problem=problem, linked=linked,
                  runs=smartgroup_runs.recent_runs(who.ws, name, limit=RUNS_SHOWN))


@router.post("/smartgroup-jobs/{name}/run")
def run_job(request: Request, who: Viewing, form: Posted, name: str) -> Response:
    report = smartgroup_runs.run_update_job(who.ws, name)
    return see_other(f"/runs/{report.run.id}")
