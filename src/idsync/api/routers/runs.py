"""``/runs``: history (filtered, paged by cursor), a run's report, terminate,
and live progress as server-sent events."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from idsync.api.auth import Acting, api_state
from idsync.api.models import (
    GeneratedPassword,
    Run,
    RunPage,
    RunPasswords,
    RunReport,
    WaitingPasswords,
)
from idsync.api.pagination import Page
from idsync.domain.plain import to_plain
from idsync.domain.results import RunState
from idsync.services import authz, collection_runs, history, job_features, requests
from idsync.services.workspace import Workspace

router = APIRouter(tags=["runs"])

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


class Terminate(BaseModel):
    reason: str = Field(default="", max_length=2000, description="Why, for the run's log.")


@router.get("/runs", response_model=RunPage, summary="Runs, newest first")
def list_runs(
    ws: Acting, page: Annotated[Page, Depends()],
    job: Annotated[str | None, Query(description="Only runs of this job (or collection).")] = None,
    state: Annotated[RunState | None, Query(description="Only runs in this state.")] = None,
    since: Annotated[dt.datetime | None, Query(description="Created at or after (UTC unless an offset is given).")] = None,
    until: Annotated[dt.datetime | None, Query(description="Created before.")] = None,
) -> dict[str, Any]:
    found = history.list_runs(
        ws, job=job, state=state.value if state else None, since=_aware(since), before=_aware(until),
        limit=page.ask, after=page.position,
    )
    return page.keyed(found, lambda run: (run.created_at, run.id))


@router.get("/runs/{run_id}", response_model=RunReport, summary="A run's report: counts, errors, log, its job runs and request")
def get_run(
    run_id: int, ws: Acting, errors: Annotated[int, Query(ge=0, le=10_000, description="Errors to list.")] = 100,
) -> dict[str, Any]:
    report = history.run_report(ws, run_id, max_errors=errors)
    jobs = collection_runs.report(ws, run_id).jobs if report.run.kind == "collection" else []
    request = requests.of_run(ws, run_id)
    return {
        "run": to_plain(report.run),
        "errors": to_plain(report.errors),
        "error_total": report.error_total,
        "log": to_plain(report.log),
        "jobs": to_plain(jobs),
        "request": to_plain(request) if request is not None else None,
        "plan": f"/api/v1/plans/{report.run.plan_id}" if report.run.plan_id else None,
    }


@router.post("/runs/{run_id}/terminate", response_model=Run, summary="Stop a run (a running one at its next batch)")
def terminate(run_id: int, ws: Acting, body: Terminate | None = None) -> dict[str, Any]:
    return to_plain(collection_runs.terminate_run(ws, run_id, (body or Terminate()).reason or None))  # type: ignore[no-any-return]


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _done(state: RunState) -> bool:
    return state.finished or state is RunState.AWAITING_APPROVAL


def _stream(ws: Workspace, run_id: int, stopping: Any, first: history.RunReport) -> Iterator[str]:
    """``progress`` when the state or counts change, ``log`` for each new log
    line, and ``end`` once the run is over (or awaits approval)."""
    report, sent_lines, last = first, 0, None
    quiet_since = time.monotonic()
    while True:
        for line in report.log[sent_lines:]:
            yield _event("log", to_plain(line))
        sent_lines = len(report.log)
        now = {"state": report.run.state.value, "counts": report.run.counts.to_dict()}
        if now != last:
            yield _event("progress", now)
            last, quiet_since = now, time.monotonic()
        if _done(report.run.state):
            yield _event("end", {**now, "error": report.run.error, "run": f"/api/v1/runs/{run_id}"})
            return
        if stopping.wait(POLL_SECONDS):
            yield _event("end", {**now, "error": "the server is shutting down", "run": f"/api/v1/runs/{run_id}"})
            return
        if time.monotonic() - quiet_since > KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        report = history.run_report(ws, run_id, max_errors=0)


@router.get("/runs/{run_id}/events", summary="Live progress of a run, as server-sent events",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Events progress {state, counts}, log {at, level, message}, end."}})
def events(run_id: int, ws: Acting, request: Request) -> StreamingResponse:
    first = history.run_report(ws, run_id, max_errors=0)  # 403/404 as the answer, before the stream starts
    stopping = api_state(request).background.stopping
    return StreamingResponse(
        _stream(ws, run_id, stopping, first), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/runs/{run_id}/passwords", summary="How many generated passwords of a run wait to be shown")
def password_count(run_id: int, ws: Acting) -> WaitingPasswords:
    authz.require_reader(ws, "runs")
    return WaitingPasswords(run_id=run_id, waiting=job_features.password_count(ws, run_id))


@router.post("/runs/{run_id}/passwords",
             summary="Take the passwords a run generated: shown once, to whoever ran it, then deleted")
def take_passwords(run_id: int, ws: Acting, response: Response) -> RunPasswords:
    response.headers["Cache-Control"] = "no-store"
    taken = job_features.take_passwords(ws, run_id)
    return RunPasswords(run_id=run_id, passwords=[
        GeneratedPassword(dn=p.dn, key=p.key, password=p.password, recipients=list(p.recipients)) for p in taken
    ])
