"""``/collections/{name}``: preview (a task), run (202: the run), recent runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from idsync.api.auth import Acting, api_state
from idsync.api.models import Run, RunStarted, TaskStarted
from idsync.domain.plain import to_plain
from idsync.domain.results import RunState
from idsync.services import collection_runs, collections

router = APIRouter(tags=["collections"])


@router.post("/collections/{name}/preview", response_model=TaskStarted, status_code=202,
             summary="Preview every job of a collection (202: a task to follow)")
def preview(name: str, ws: Acting, request: Request, response: Response) -> dict[str, Any]:
    collections.load_collection(ws, name)  # 404 now rather than in the task
    task = api_state(request).background.start_task(ws.actor, "collection preview",
                                                    lambda: collections.preview_collection(ws, name))
    url = f"/api/v1/tasks/{task.id}"
    response.headers["Location"] = url
    return {"task_id": task.id, "state": "running", "url": url}


@router.post("/collections/{name}/run", response_model=RunStarted, status_code=202, summary="Run a collection now (202: the run)")
def run(name: str, ws: Acting, request: Request, response: Response) -> dict[str, Any]:
    background = api_state(request).background
    started = collection_runs.start_run(ws, name, background.runtime)
    if started.state is RunState.RUNNING:
        assert started.fence is not None
        background.executor.submit(started.run_id, started.fence)
    url = f"/api/v1/runs/{started.run_id}"
    response.headers["Location"] = url
    return {
        "run_id": started.run_id, "state": started.state.value, "reason": started.reason, "url": url,
        "events": f"{url}/events",
    }


@router.get("/collections/{name}/runs", response_model=list[Run], summary="A collection's recent runs, newest first")
def recent(name: str, ws: Acting, limit: Annotated[int, Query(ge=1, le=500)] = 10) -> list[Any]:
    return to_plain(collection_runs.recent_runs(ws, name, limit=limit))  # type: ignore[no-any-return]
