"""``/tasks/{id}``: long work with no resource of its own (a collection preview).

A task is kept by the process that runs it, for as long as it runs: its
state is ``running``, ``succeeded`` (with its ``result``) or ``failed``
(with a ``problem`` in the API's error shape). Only who started it, or an
administrator, may read it.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from idsync.api.auth import Acting, api_state
from idsync.api.errors import from_idsync_error
from idsync.api.models import Task
from idsync.domain.plain import to_plain
from idsync.domain.roles import Role
from idsync.errors import IdsyncError, NotFoundError
from idsync.services import authz

router = APIRouter(tags=["tasks"])


@router.get("/tasks/{task_id}", response_model=Task, summary="A task's state, and its result once done")
def get_task(task_id: int, ws: Acting, request: Request, response: Response) -> dict[str, Any]:
    task = api_state(request).background.task(task_id)
    if task is None or (task.owner != ws.actor and not authz.rights(ws).has(Role.ADMIN)):
        raise NotFoundError(f"no task {task_id}")
    body: dict[str, Any] = {"task_id": task.id, "kind": task.kind}
    if not task.future.done():
        response.headers["Retry-After"] = "1"
        return {**body, "state": "running"}
    error = task.future.exception()
    if error is None:
        return {**body, "state": "succeeded", "result": to_plain(task.future.result())}
    if isinstance(error, IdsyncError):
        return {**body, "state": "failed", "problem": json.loads(bytes(from_idsync_error(error).body))}
    return {**body, "state": "failed", "problem": {"status": 500, "detail": "the task met an unexpected error; it is logged"}}
