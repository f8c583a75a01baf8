"""``/jobs/{name}/preview`` and ``/jobs/{name}/run``: long work answered 202;
``/jobs/{name}/try`` and ``/jobs/try``: a job's mappings tried on its first rows.

The preview or run is recorded before the answer (so a refusal, an unknown
job or a job already running is the answer itself, 403/404/409), then runs
in a thread of the server: ``Location`` names the plan or run to follow
(``GET`` it until its state is final, or follow ``/runs/{id}/events``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from idsync.api.auth import Acting, api_state
from idsync.api.models import PreviewStarted, RunStarted
from idsync.domain.plain import to_plain
from idsync.services import definitions, job_trial, jobs

router = APIRouter(tags=["jobs"])


class RunJob(BaseModel):
    plan_id: int | None = Field(default=None, description="Apply this stored plan instead of planning anew (releases a held run).")
    full: bool = Field(default=False, description="A changed-only job looks at every record this once.")


@router.post("/jobs/{name}/preview", response_model=PreviewStarted, status_code=202, summary="Compute what a run would change, as a plan (202: the plan)")
def preview(name: str, ws: Acting, request: Request, response: Response) -> dict[str, Any]:
    background = api_state(request).background
    plan_id = background.start_tracked(
        lambda hook: jobs.preview_job(ws, name, on_started=hook), f"preview of job {name!r}"
    )
    url = f"/api/v1/plans/{plan_id}"
    response.headers["Location"] = url
    return {"plan_id": plan_id, "state": "computing", "url": url}


@router.post("/jobs/{name}/run", response_model=RunStarted, status_code=202, summary="Run a job: plan and apply (202: the run)")
def run(name: str, ws: Acting, request: Request, response: Response, body: RunJob | None = None) -> dict[str, Any]:
    background = api_state(request).background
    options = body or RunJob()
    run_id = background.start_tracked(
        lambda hook: jobs.run_job(
            ws, name, plan_id=options.plan_id, full=options.full, should_stop=background.stop_check, on_started=hook,
        ),
        f"run of job {name!r}",
    )
    url = f"/api/v1/runs/{run_id}"
    response.headers["Location"] = url
    return {"run_id": run_id, "state": "running", "url": url, "events": f"{url}/events"}


class TryJob(BaseModel):
    rows: int = Field(default=job_trial.DEFAULT_ROWS, ge=1, le=job_trial.MOST_ROWS,
                      description="How many source rows to map.")


class TryDefinition(TryJob):
    job: dict[str, Any] = Field(description="The job definition as edited (as in a YAML file), saved or not.")


@router.post("/jobs/try", summary="Try an unsaved job definition's mappings on the first rows of its source; writes nothing")
def try_definition(ws: Acting, body: TryDefinition) -> dict[str, Any]:
    trial = job_trial.try_job(ws, definitions.parse("job", body.job), body.rows)
    result: dict[str, Any] = to_plain(trial)
    return result


@router.post("/jobs/{name}/try", summary="Try a job's mappings on the first rows of its source; writes nothing")
def try_stored(name: str, ws: Acting, body: TryJob | None = None) -> dict[str, Any]:
    trial = job_trial.try_stored(ws, name, (body or TryJob()).rows)
    result: dict[str, Any] = to_plain(trial)
    return result
