"""Definitions: stores, sources, jobs, schedules and collections, with ETags.

Each kind has the same routes: list, get (secrets left out; ``env:NAME``
references kept), create (``POST``, validated as a definition of its kind),
replace (``PUT`` with ``If-Match``), delete. A definition's ``ETag`` is a
hash of its stored body: a ``PUT`` whose ``If-Match`` names another version
is refused with 412, so an edit based on a stale read is never silently
merged; one without ``If-Match`` is refused with 428. A secret field left
out of a body keeps the secret stored before (as ``idsync apply`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Query, Response

from idsync.api.auth import Acting
from idsync.api.errors import ApiProblem
from idsync.api.models import ConnectionTest, Definition, DefinitionPage, Saved
from idsync.api.pagination import Page
from idsync.domain.roles import Role
from idsync.errors import ConfigError, NotFoundError, StateConflictError, quoted
from idsync.services import (
    authz,
    collections,
    connections,
    definitions,
    jobs,
    notifications,
    schedules,
    smartgroups,
    store_edits,
    validation,
)
from idsync.services.definitions import NOUNS, Kind
from idsync.services.workspace import Workspace

router = APIRouter()

PLURALS: dict[str, str] = {
    "store": "stores", "source": "sources", "job": "jobs", "schedule": "schedules", "collection": "collections",
    "smart_group": "smart-groups", "smart_group_job": "smart-group-jobs",
}

DefinitionBody = Annotated[dict[str, Any], Body(description="The definition, as in a YAML file of `idsync apply`.")]


def etag_of(body: dict[str, Any]) -> str:
    """The ETag of a stored definition: its version (a hash of its body, secrets left out)."""
    return f'"{definitions.version_of(body)}"'


def read(ws: Workspace, kind: Kind, name: str) -> dict[str, Any]:
    """Definition *name* of *kind* as an export shows it (any role reads it)."""
    authz.require_reader(ws, f"{NOUNS[kind]}s")
    return definitions.exportable(ws, kind, name)


def _exists(ws: Workspace, kind: Kind, name: str) -> bool:
    try:
        definitions.exportable(ws, kind, name)
    except NotFoundError:
        return False
    return True


def versions_of(if_match: str) -> list[str] | None:
    """The versions an If-Match header names; None for ``*`` (any version)."""
    if if_match.strip() == "*":
        return None
    return [part.strip().removeprefix("W/").strip('"') for part in if_match.split(",") if part.strip()]


Versions = Collection[str] | None
"""What an edit is based on (see definitions.save); None for a creation or ``If-Match: *``."""


def _save_store(ws: Workspace, definition: Any, _offline: bool, based_on: Versions) -> dict[str, Any]:
    return {"outcome": store_edits.save_store(ws, definition, based_on=based_on)}


def _save_source(ws: Workspace, definition: Any, _offline: bool, based_on: Versions) -> dict[str, Any]:
    validation.check_source(definition)
    return {"outcome": definitions.save(ws, "source", definition, based_on=based_on)}


def _save_job(ws: Workspace, definition: Any, offline: bool, based_on: Versions) -> dict[str, Any]:
    saved = jobs.save_checked(ws, definition, offline=offline, based_on=based_on)
    return {"outcome": saved.outcome, "warning": saved.warning}


def _save_schedule(ws: Workspace, definition: Any, _offline: bool, based_on: Versions) -> dict[str, Any]:
    return {"outcome": schedules.save_schedule(ws, definition, based_on=based_on)}


def _save_collection(ws: Workspace, definition: Any, _offline: bool, based_on: Versions) -> dict[str, Any]:
    return {"outcome": collections.save_collection(ws, definition, based_on=based_on)}


def _save_smart_group(ws: Workspace, definition: Any, _offline: bool, based_on: Versions) -> dict[str, Any]:
    return {"outcome": smartgroups.save_group(ws, definition, based_on=based_on)}


def _save_smart_group_job(ws: Workspace, definition: Any, _offline: bool, based_on: Versions) -> dict[str, Any]:
    return {"outcome": smartgroups.save_job(ws, definition, based_on=based_on)}


SAVERS: dict[str, Callable[[Workspace, Any, bool, Versions], dict[str, Any]]] = {
    "store": _save_store, "source": _save_source, "job": _save_job, "schedule": _save_schedule,
    "collection": _save_collection, "smart_group": _save_smart_group, "smart_group_job": _save_smart_group_job,
}

REMOVERS: dict[str, Callable[[Workspace, str], None]] = {
    "store": lambda ws, name: definitions.remove(ws, "store", name),
    "source": lambda ws, name: definitions.remove(ws, "source", name),
    "job": lambda ws, name: definitions.remove(ws, "job", name),
    "schedule": schedules.remove_schedule,
    "collection": collections.remove_collection,
    "smart_group": smartgroups.remove_group,
    "smart_group_job": smartgroups.remove_job,
}

Offline = Query(False, description="Jobs: do not read the source and store to check the fields and attributes used.")


def _parse(kind: Kind, body: dict[str, Any], name: str | None = None) -> Any:
    if name is not None:
        given = body.get("name")
        if given is not None and given != name:
            raise ConfigError(
                f"the body names {NOUNS[kind]} {quoted(given)}, the path {quoted(name)}", field="name",
                hint="rename by creating the new name and deleting the old one",
            )
        body = {**body, "name": name}
    return definitions.parse(kind, body)


def _routes(kind: Kind) -> None:
    plural = PLURALS[kind]
    noun = NOUNS[kind]
    tag: list[str | Enum] = [plural]

    @router.get(f"/{plural}", tags=tag, summary=f"List {noun}s (secrets left out)", name=f"list_{plural.replace('-', '_')}")
    def list_items(ws: Acting, page: Annotated[Page, Depends()]) -> DefinitionPage:
        items = definitions.list_definitions(ws, kind)
        return DefinitionPage.model_validate(page.of([definitions.public_body(item) for item in items]))

    @router.get(f"/{plural}/{{name}}", tags=tag, summary=f"A {noun} (secrets left out), with its ETag",
                name=f"get_{kind}")
    def get_item(name: str, ws: Acting, response: Response) -> Definition:
        body = read(ws, kind, name)
        response.headers["ETag"] = etag_of(body)
        return Definition.model_validate(body)

    @router.post(f"/{plural}", tags=tag, status_code=201, summary=f"Create a {noun}", name=f"create_{kind}")
    def create_item(body: DefinitionBody, ws: Acting, response: Response, offline: bool = Offline) -> Saved:
        authz.require(ws, Role.OPERATOR, f"save {noun}s")
        definition = _parse(kind, body)
        if _exists(ws, kind, definition.name):
            raise StateConflictError(
                f"{noun} {quoted(definition.name)} exists", field="name",
                hint="change it with PUT and its ETag in If-Match",
            )
        result = SAVERS[kind](ws, definition, offline, None)
        stored = definitions.exportable(ws, kind, definition.name)
        response.headers["Location"] = f"/api/v1/{plural}/{definition.name}"
        response.headers["ETag"] = etag_of(stored)
        return Saved(name=definition.name, **result)

    @router.put(f"/{plural}/{{name}}", tags=tag, summary=f"Replace a {noun} (If-Match: its ETag)",
                name=f"replace_{kind}")
    def replace_item(
        name: str, body: DefinitionBody, ws: Acting, response: Response,
        if_match: Annotated[str | None, Header(description="The ETag of the version this edit is based on.")] = None,
        offline: bool = Offline,
    ) -> Saved:
        authz.require(ws, Role.OPERATOR, f"save {noun}s")
        definitions.exportable(ws, kind, name)  # 404 before anything else
        if not if_match:
            raise ApiProblem(428, f"changing {noun} {quoted(name)} needs If-Match with the ETag it was read with",
                             hint="GET it first", field="If-Match")
        definition = _parse(kind, body, name)
        # The version is checked by the save itself, in its transaction: a
        # concurrent edit between the check and the write is refused too.
        result = SAVERS[kind](ws, definition, offline, versions_of(if_match))
        response.headers["ETag"] = etag_of(definitions.exportable(ws, kind, name))
        return Saved(name=name, **result)

    @router.delete(f"/{plural}/{{name}}", tags=tag, status_code=204, summary=f"Delete a {noun}",
                   name=f"delete_{kind}")
    def delete_item(name: str, ws: Acting) -> Response:
        REMOVERS[kind](ws, name)
        return Response(status_code=204)


for _kind in PLURALS:
    _routes(_kind)  # type: ignore[arg-type]


@router.post("/stores/{name}/test", response_model=ConnectionTest, tags=["stores"], summary="Connect and bind; one line describing the server")
def test_store(name: str, ws: Acting) -> dict[str, Any]:
    return {"store": name, "ok": True, "detail": connections.test_store(ws, name)}


@router.post("/stores/{name}/notify-test", response_model=ConnectionTest, tags=["stores"],
             summary="Send a test message through the store's notification server")
def notify_test(
    name: str, ws: Acting,
    to: Annotated[list[str] | None, Body(embed=True, description="Recipients; default: the server's default_to.")] = None,
) -> dict[str, Any]:
    return {"store": name, "ok": True, "detail": notifications.send_test(ws, name, to or [])}


@router.post("/sources/{name}/test", response_model=ConnectionTest, tags=["sources"], summary="Open the source; one line describing it")
def test_source(name: str, ws: Acting) -> dict[str, Any]:
    return {"source": name, "ok": True, "detail": connections.test_source(ws, name)}
