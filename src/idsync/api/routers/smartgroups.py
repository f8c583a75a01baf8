"""``/smart-groups`` and ``/smart-group-jobs``: what the definitions routes do not.

Their definitions are listed, read, created, replaced (``If-Match``) and
deleted by the routes every definition kind shares
(:mod:`idsync.api.routers.definitions`). Here: a group's preview (the
members an update would add and remove now; changes nothing), its update,
why an entry is or is not a member, and an update job's targets and run.
An update, or an update job's run, is long work: it answers 202 with a task
to follow (``/tasks/{id}``), whose result is the report of the run it
recorded (``run_url``). Who may not update is refused at once (403), and an
unknown group or job at once (404), not in the task.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from idsync.api.auth import Acting, api_state
from idsync.api.models import GroupPlan, JobTargets, MemberExplanation, TaskStarted, UpdateReport
from idsync.domain.plain import to_plain
from idsync.domain.roles import Role
from idsync.services import authz, smartgroup_runs, smartgroups
from idsync.services.workspace import Workspace

router = APIRouter()
GROUPS: list[str | Enum] = ["smart-groups"]
JOBS: list[str | Enum] = ["smart-group-jobs"]


def _report(report: smartgroup_runs.UpdateReport) -> UpdateReport:
    return UpdateReport.model_validate({
        "run": to_plain(report.run), "groups": to_plain(report.groups), "run_url": f"/api/v1/runs/{report.run.id}",
    })


def _task(ws: Workspace, request: Request, response: Response, kind: str, work: Any) -> dict[str, Any]:
    """Start *work* (its report, once done) as a task; 202 with where to follow it."""
    task = api_state(request).background.start_task(ws.actor, kind, lambda: _report(work()).model_dump())
    url = f"/api/v1/tasks/{task.id}"
    response.headers["Location"] = url
    return {"task_id": task.id, "state": "running", "url": url}


@router.get("/smart-groups/{name}/preview", tags=GROUPS,
            summary="The members an update would add and remove now (changes nothing)")
def preview(name: str, ws: Acting) -> GroupPlan:
    return GroupPlan.model_validate(to_plain(smartgroups.preview_group(ws, name)))


@router.post("/smart-groups/{name}/update", tags=GROUPS, response_model=TaskStarted, status_code=202,
             summary="Recompute the group and write only the difference, recorded as a run (202: a task)")
def update(name: str, ws: Acting, request: Request, response: Response) -> dict[str, Any]:
    authz.require(ws, Role.OPERATOR, "update smart groups")
    smartgroups.load_group(ws, name)  # 404 now rather than in the task
    return _task(ws, request, response, "smart group update", lambda: smartgroup_runs.update_group(ws, name))


@router.get("/smart-groups/{name}/explain", tags=GROUPS,
            summary="Why an entry is or is not a member: the rule that decides, with the entry's values")
def explain(
    name: str, ws: Acting, dn: Annotated[str, Query(min_length=1, max_length=4000, description="The entry's DN.")],
) -> MemberExplanation:
    result = smartgroups.explain_member(ws, name, dn)
    data: dict[str, Any] = to_plain(result.explanation)
    return MemberExplanation.model_validate({
        **data, "summary": result.explanation.summary, "in_group_now": result.in_group_now,
        "pending_change": result.pending_change,
    })


@router.get("/smart-group-jobs/{name}/targets", tags=JOBS, summary="The smart groups an update job targets now")
def targets(name: str, ws: Acting) -> JobTargets:
    job = smartgroups.load_job(ws, name)
    return JobTargets(name=name, targets=[group.name for group in smartgroups.job_targets(ws, job)])


@router.post("/smart-group-jobs/{name}/run", tags=JOBS, response_model=TaskStarted, status_code=202,
             summary="Run an update job now: recompute its groups, write the differences, record the run (202: a task)")
def run(name: str, ws: Acting, request: Request, response: Response) -> dict[str, Any]:
    authz.require(ws, Role.OPERATOR, "run smart group update jobs")
    smartgroups.load_job(ws, name)  # 404 now rather than in the task
    return _task(ws, request, response, "smart group update job", lambda: smartgroup_runs.run_update_job(ws, name))
