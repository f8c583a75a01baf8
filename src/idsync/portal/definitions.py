"""Identity stores, data sources, jobs and collections: a list of each, and
a definition as an export shows it (secrets left out), with links to the
forms that create and edit them (:mod:`definition_forms`, :mod:`job_forms`,
the collection wizard) for operators."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from idsync.portal.web import PortalRoute, Viewing, render
from idsync.services import authz, definitions
from idsync.services.definitions import NOUNS, Kind

router = APIRouter(route_class=PortalRoute)

SECTIONS: dict[str, Kind] = {"stores": "store", "sources": "source", "jobs": "job", "collections": "collection"}
SAVED = {"created": "is created", "updated": "is updated", "unchanged": "had no changes to save"}


def _summary(kind: Kind, body: dict[str, Any]) -> str:
    """One line about a definition, for its list."""
    if kind == "job":
        destination = body.get("destination") or {}
        source = body.get("source") or {}
        reads = source.get("data_source") or source.get("store", "") if isinstance(source, dict) else str(source)
        return f"{reads} → {destination.get('store', '')} {destination.get('container', '')}".strip()
    if kind == "collection":
        names = [j if isinstance(j, str) else j.get("job", "") for j in body.get("jobs", [])]
        schedule = f"; schedule {body['schedule']}" if body.get("schedule") else ""
        return ", ".join(names) + schedule
    return str(body.get("kind", ""))


def _lister(section: str, kind: Kind) -> None:
    @router.get(f"/{section}", name=f"portal_{section}")
    def list_section(request: Request, who: Viewing) -> Response:
        bodies = [definitions.public_body(item) for item in definitions.list_definitions(who.ws, kind)]
        rows = [(b.get("name", ""), _summary(kind, b), b.get("description", "")) for b in bodies]
        return render(request, "definitions.html", who, section=section, noun=NOUNS[kind], rows=rows)

    @router.get(f"/{section}/{{name}}", name=f"portal_{kind}")
    def show_definition(request: Request, who: Viewing, name: str, saved: str = "") -> Response:
        authz.require_reader(who.ws, f"{NOUNS[kind]}s")
        body = definitions.exportable(who.ws, kind, name)
        text = json.dumps(body, indent=2, ensure_ascii=False, default=str)
        return render(request, "definition.html", who, section=section, noun=NOUNS[kind], name=name, text=text,
                      saved=SAVED.get(saved))


for _section, _kind in SECTIONS.items():
    _lister(_section, _kind)
