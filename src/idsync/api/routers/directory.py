"""``/stores/{name}/…``: directory tools for any identity store.

- ``GET entries``: a search by RFC 4515 filter, as a page of a JSON list
  (``?limit=&cursor=``), or every entry as JSON lines
  (``format=jsonl``, ``application/x-ndjson``) sent as the directory's pages arrive;
- ``GET ldif``: an RFC 2849 LDIF export, streamed;
- ``POST ldif``: an LDIF import (the request body), with ``dry_run`` and
  ``stop_on_error``, answering its counts and its records, failed first;
- ``POST containers``: create a container and its missing parents.

Reading needs any role, writing the role operator (the services check).
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from idsync.api.auth import Acting
from idsync.api.models import Container, EntryPage, ImportRecord, ImportReport
from idsync.api.pagination import Page
from idsync.api.streams import started, written
from idsync.domain.entry import Entry, Scope
from idsync.errors import ConfigError
from idsync.services import directory
from idsync.services.ldif_import import ImportEvent
from idsync.services.workspace import Workspace

router = APIRouter(tags=["directory"])

LDIF_MEDIA_TYPE = "text/x-ldif"
JSON_LINES = "application/x-ndjson"
RECORDS_LISTED = 1000
"""Records an import's answer lists (failed ones first); the rest are only counted."""
MAX_IMPORT_BYTES = 512 * 1024 * 1024
"""The largest LDIF body an import takes."""

_BINARY = re.compile("[\udc80-\udcff]")


class Format(StrEnum):
    JSON = "json"
    JSONL = "jsonl"


def _value(value: str) -> Any:
    """A value as JSON: binary values (bytes that are not UTF-8) as ``{"base64": …}``."""
    if _BINARY.search(value):
        return {"base64": base64.b64encode(value.encode("utf-8", "surrogateescape")).decode("ascii")}
    return value


def plain_entry(entry: Entry) -> dict[str, Any]:
    return {"dn": entry.dn, "attributes": {name: [_value(v) for v in values] for name, values in entry.attrs.pairs()}}


class SearchQuery:
    """Where and what to search."""

    def __init__(
        self,
        base: Annotated[str | None, Query(max_length=4000, description="Base DN (default: the store's).")] = None,
        scope: Annotated[Scope, Query(description="base, one or sub.")] = Scope.SUB,
        filter: Annotated[str, Query(min_length=1, max_length=10_000, description="RFC 4515 filter.")] = (
            directory.EVERYTHING
        ),
        attributes: Annotated[str | None, Query(
            max_length=4000, description="Comma-separated (default: every user attribute; + adds operational ones).",
        )] = None,
    ) -> None:
        self.base = base
        self.scope = scope
        self.filter = filter
        self.attributes: Sequence[str] | None = (
            [a.strip() for a in attributes.split(",") if a.strip()] or None if attributes else None
        )

    def entries(self, ws: Workspace, store: str) -> Iterator[Entry]:
        return directory.search(ws, store, base=self.base, scope=self.scope, filterstr=self.filter,
                                attributes=self.attributes)


def _lines(entries: Iterable[Entry]) -> Iterator[str]:
    for entry in entries:
        yield json.dumps(plain_entry(entry), ensure_ascii=False) + "\n"


@router.get(
    "/stores/{name}/entries", summary="Search a store: a page of entries, or all of them as JSON lines",
    responses={200: {"content": {JSON_LINES: {"schema": {"type": "string"}}},
                     "description": "A page (JSON), or one entry per line (format=jsonl)."}},
)
def search(
    name: str, ws: Acting, request: Request, query: Annotated[SearchQuery, Depends()],
    page: Annotated[Page, Depends()],
    format: Annotated[Format | None, Query(description="json (a page) or jsonl (every entry, streamed).")] = None,
) -> EntryPage:
    lines = format is Format.JSONL or (format is None and JSON_LINES in request.headers.get("accept", ""))
    entries = query.entries(ws, name)
    if lines:
        return StreamingResponse(_lines(started(entries)), media_type=JSON_LINES)  # type: ignore[return-value]
    try:
        return EntryPage.model_validate(page.of(entries, plain_entry))
    finally:
        entries.close()  # type: ignore[attr-defined]


@router.get(
    "/stores/{name}/ldif", summary="Export a store's entries as RFC 2849 LDIF, streamed",
    response_class=StreamingResponse,
    responses={200: {"content": {LDIF_MEDIA_TYPE: {"schema": {"type": "string"}}}, "description": "LDIF."}},
)
def export(
    name: str, ws: Acting, query: Annotated[SearchQuery, Depends()],
    operational: Annotated[bool, Query(description="Also export operational attributes.")] = False,
) -> StreamingResponse:
    def write(out: Any) -> None:
        directory.export_ldif(ws, name, out, base=query.base, scope=query.scope, filterstr=query.filter,
                              operational=operational)

    return StreamingResponse(written(write), media_type=LDIF_MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}.ldif"'})


class Collected:
    """An import's records: the failed ones and the first others, up to :data:`RECORDS_LISTED`."""

    def __init__(self) -> None:
        self.failed: list[ImportEvent] = []
        self.others: list[ImportEvent] = []
        self.seen = 0

    def __call__(self, event: ImportEvent) -> None:
        self.seen += 1
        if event.error is not None and len(self.failed) < RECORDS_LISTED:
            self.failed.append(event)
        elif event.error is None and len(self.others) < RECORDS_LISTED:
            self.others.append(event)

    def listed(self) -> list[ImportEvent]:
        return (self.failed + self.others)[:RECORDS_LISTED]


async def _spooled(request: Request, target: Any) -> None:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise ConfigError(f"the LDIF body is over {MAX_IMPORT_BYTES // (1024 * 1024)} MiB", field="body",
                              hint="import it in parts, or with the command line from a file")
        target.write(chunk)
    target.flush()


@router.post(
    "/stores/{name}/ldif", summary="Import LDIF (the body): adds, modifies, deletes, renames; results per record",
    openapi_extra={"requestBody": {"required": True, "content": {LDIF_MEDIA_TYPE: {"schema": {"type": "string"}}}}},
)
async def import_ldif(
    name: str, ws: Acting, request: Request,
    dry_run: Annotated[bool, Query(description="Read every record and say what it would do; write nothing.")] = False,
    stop_on_error: Annotated[bool, Query(description="Stop at the first record that fails.")] = False,
) -> ImportReport:
    with tempfile.NamedTemporaryFile(prefix="idsync-import-", suffix=".ldif") as body:
        await _spooled(request, body)
        events = Collected()
        result = await run_in_threadpool(
            directory.import_ldif, ws, name, Path(body.name), events, dry_run_only=dry_run,
            stop_on_error=stop_on_error,
        )
    return ImportReport(
        added=result.added, modified=result.modified, deleted=result.deleted, renamed=result.renamed,
        failed=result.failed, dry_run=result.dry_run, stopped=result.stopped, left_out=sorted(result.left_out),
        summary=result.summary(),
        records=[ImportRecord(line=e.line, action=e.action, dn=e.dn, error=e.error, detail=e.detail)
                 for e in events.listed()],
        records_not_listed=max(0, events.seen - len(events.listed())),
    )


class NewContainer(BaseModel):
    dn: str = Field(min_length=1, max_length=4000, description="DN of the container, e.g. ou=People,dc=example,dc=org.")


@router.post("/stores/{name}/containers", summary="Create a container and its missing parents", status_code=201)
def add_container(name: str, body: NewContainer, ws: Acting, response: Response) -> Container:
    created = directory.add_container(ws, name, body.dn)
    if not created:
        response.status_code = 200
    return Container(dn=body.dn, created=created)
