"""Run history (filtered by collection or job, and state) and a run's
report: its counts, per-job counts, record errors (key, line, attribute),
its request, and its log."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from idsync.domain.results import RunState
from idsync.portal.web import PortalRoute, Viewing, render
from idsync.services import collection_runs, history, requests, smartgroup_runs

router = APIRouter(route_class=PortalRoute)

RUNS_SHOWN = 100
ERRORS_SHOWN = 200


@router.get("/runs")
def list_runs(request: Request, who: Viewing, collection: str = "", state: str = "") -> Response:
    found = history.list_runs(who.ws, job=collection.strip() or None, state=state or None, limit=RUNS_SHOWN)
    return render(request, "runs.html", who, found=found, collection=collection, state=state,
                  states=[s.value for s in RunState])


@router.get("/runs/{run_id}")
def show_run(request: Request, who: Viewing, run_id: int) -> Response:
    report = history.run_report(who.ws, run_id, max_errors=ERRORS_SHOWN)
    jobs = collection_runs.report(who.ws, run_id).jobs if report.run.kind == "collection" else []
    groups = smartgroup_runs.results_of(who.ws, run_id) if report.run.kind == smartgroup_runs.RUN_KIND else []
    return render(request, "run.html", who, report=report, jobs=jobs, groups=groups,
                  raised=requests.of_run(who.ws, run_id))
