"""Run history (filtered by collection or job, state and creation date) and
a run's report: its counts, per-job counts, record errors (key, line,
attribute), its request, the messages it notified, and its log. While a
run is under way its page follows it live (static/portal.js reading the
API's event stream) and offers an operator the Terminate button; without
JavaScript the page says to reload it."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.portal.web import PortalRoute, Posted, Viewing, render, see_other
from idsync.services import collection_runs, history, outbox, requests

router = APIRouter(route_class=PortalRoute)

RUNS_SHOWN = 100
ERRORS_SHOWN = 200
MESSAGES_SHOWN = 200
UNDER_WAY = (RunState.PENDING, RunState.QUEUED, RunState.RUNNING)
"""The states a run page follows live."""


def parse_day(text: str, field: str) -> dt.date | None:
    """A day of a date filter (``YYYY-MM-DD``, as a date input sends it), or None when empty."""
    text = text.strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not a day", field=field, hint="write it as YYYY-MM-DD") from exc


def day_range(first: str, last: str) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The instants (UTC) a filter from day *first* to day *last*, both
    included, covers: from the start of the first to the start of the day after the last."""
    since, until = parse_day(first, "from"), parse_day(last, "to")
    start = dt.datetime.combine(since, dt.time(), dt.UTC) if since else None
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC) if until else None
    return start, end


@router.get("/runs")
def list_runs(
    request: Request, who: Viewing, collection: str = "", state: str = "",
    first: Annotated[str, Query(alias="from")] = "", last: Annotated[str, Query(alias="to")] = "",
) -> Response:
    shown: dict[str, Any] = {"collection": collection, "state": state, "first": first, "last": last,
             "states": [s.value for s in RunState]}
    try:
        since, before = day_range(first, last)
        found = history.list_runs(who.ws, job=collection.strip() or None, state=state or None, limit=RUNS_SHOWN,
                                  since=since, before=before)
    except ConfigError as exc:
        return render(request, "runs.html", who, status=422, found=[], message=exc.message
                      + (f" ({exc.hint})" if exc.hint else ""), **shown)
    return render(request, "runs.html", who, found=found, message=None, **shown)


@router.get("/runs/{run_id}")
def show_run(request: Request, who: Viewing, run_id: int, done: str = "") -> Response:
    report = history.run_report(who.ws, run_id, max_errors=ERRORS_SHOWN)
    jobs = collection_runs.report(who.ws, run_id).jobs if report.run.kind == "collection" else []
    return render(
        request, "run.html", who, report=report, jobs=jobs, raised=requests.of_run(who.ws, run_id),
        messages=outbox.list_messages(who.ws, run_id=run_id, limit=MESSAGES_SHOWN),
        live=report.run.state in UNDER_WAY, may_terminate=who.has("operator") and report.run.state in UNDER_WAY,
        terminated=done == "terminate",
    )


@router.post("/runs/{run_id}/terminate")
def terminate(who: Viewing, form: Posted, run_id: int) -> Response:
    collection_runs.terminate_run(who.ws, run_id, form.get("reason").strip() or None)
    return see_other(f"/runs/{run_id}?done=terminate")
