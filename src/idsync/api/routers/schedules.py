"""``/schedules/{name}``: status with next runs, enable/disable, run now."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from idsync.api.auth import Acting, api_state
from idsync.api.models import ScheduleDetail, ScheduleEnabled, ScheduleRunsStarted, ScheduleStatus
from idsync.domain.plain import to_plain
from idsync.domain.roles import Role
from idsync.runtime.scheduler import run_now
from idsync.services import authz, schedules

router = APIRouter(tags=["schedules"])


@router.get("/schedule-status", response_model=list[ScheduleStatus], summary="Every schedule with its next and last runs")
def status(ws: Acting) -> list[Any]:
    return to_plain(schedules.status(ws))  # type: ignore[no-any-return]


@router.get("/schedules/{name}/status", response_model=ScheduleDetail, summary="A schedule: triggers, next runs, targets, recent occurrences")
def detail(
    name: str, ws: Acting,
    count: Annotated[int, Query(ge=1, le=100, description="How many next runs to list.")] = 5,
    since: Annotated[str | None, Query(
        alias="from", description="List the runs due from this instant on (YYYY-MM-DD[THH:MM], the schedule's zone).",
    )] = None,
) -> dict[str, Any]:
    return to_plain(schedules.detail(ws, name, count=count, since=since))  # type: ignore[no-any-return]


@router.post("/schedules/{name}/enable", response_model=ScheduleEnabled, summary="Enable a schedule")
def enable(name: str, ws: Acting) -> dict[str, Any]:
    return {"schedule": name, "enabled": True, "outcome": schedules.set_enabled(ws, name, True)}


@router.post("/schedules/{name}/disable", response_model=ScheduleEnabled, summary="Disable a schedule")
def disable(name: str, ws: Acting) -> dict[str, Any]:
    return {"schedule": name, "enabled": False, "outcome": schedules.set_enabled(ws, name, False)}


@router.post("/schedules/{name}/run-now", response_model=ScheduleRunsStarted, status_code=202, summary="Start every collection of a schedule now (202: the runs)")
def run_schedule_now(name: str, ws: Acting, request: Request, response: Response) -> dict[str, Any]:
    authz.require(ws, Role.OPERATOR, "run collections")
    background = api_state(request).background
    started = run_now(ws, name, background.executor, background.runtime)
    runs = [
        {"run_id": s.run_id, "collection": s.collection, "state": s.state.value, "reason": s.reason,
         "url": f"/api/v1/runs/{s.run_id}"}
        for s in started
    ]
    if len(runs) == 1:
        response.headers["Location"] = runs[0]["url"]  # type: ignore[assignment]
    return {"schedule": name, "runs": runs}
