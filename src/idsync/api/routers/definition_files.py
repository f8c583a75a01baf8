"""``/definitions``: definitions as code, what ``idsync apply -f`` and ``idsync export`` do.

``POST /definitions/apply`` takes a YAML document with the sections
``stores``, ``sources``, ``jobs``, ``schedules``, ``smart_groups``,
``smart_group_jobs`` and ``collections``: everything in it is validated
before anything is saved, and an error names the line and the field.
``GET /definitions/export`` answers every definition as such a document,
secrets left out (``env:NAME`` references kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from idsync.api.auth import Acting
from idsync.api.models import Applied, AppliedItem
from idsync.errors import ConfigError
from idsync.services import yamlio

router = APIRouter(tags=["definitions"])

YAML_MEDIA_TYPE = "application/yaml"
MAX_YAML_BYTES = 8 * 1024 * 1024
BODY_LABEL = Path("the request body")
"""How messages name the document (they say where: ``the request body:12: …``)."""


async def _text(request: Request) -> str:
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_YAML_BYTES:
            raise ConfigError(f"the definitions document is over {MAX_YAML_BYTES // (1024 * 1024)} MiB", field="body")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"the definitions document is not UTF-8 (byte {exc.start})", field="body") from exc


@router.post(
    "/definitions/apply", summary="Validate every definition of a YAML document, then save them all (or none)",
    openapi_extra={"requestBody": {"required": True, "content": {YAML_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
async def apply(
    ws: Acting, request: Request,
    offline: Annotated[bool, Query(description="Do not read sources and stores to check jobs' fields.")] = False,
) -> Applied:
    text = await _text(request)
    done = await run_in_threadpool(lambda: yamlio.apply_file(ws, BODY_LABEL, offline=offline, text=text))
    return Applied(items=[
        AppliedItem(kind=item.kind, name=item.name, outcome=item.outcome, warning=item.warning)  # type: ignore[arg-type]
        for item in done
    ])


@router.get(
    "/definitions/export", summary="Every definition as one YAML document, secrets left out",
    response_class=PlainTextResponse,
    responses={200: {"content": {YAML_MEDIA_TYPE: {"schema": {
        "type": "object", "description": "A YAML mapping of the sections (stores, sources, jobs, ...) to lists.",
    }}}, "description": "YAML."}},
)
def export(ws: Acting) -> PlainTextResponse:
    return PlainTextResponse(yamlio.export_all(ws), media_type=YAML_MEDIA_TYPE)
