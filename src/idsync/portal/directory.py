"""The directory browser, for every identity store (read-only): the tree
one level at a time (the children of an entry, each with a link to expand
it and one to its attributes), an entry's page, and a search by filter
with a base and a scope, a bounded page at a time. Binary values are shown
by their size and secrets (``userPassword``…) never: see
:mod:`idsync.services.directory_browse`."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from idsync.domain.dn import dn_equal, parent_dn
from idsync.domain.entry import Scope
from idsync.errors import ConfigError, ConnectorError, NotFoundError
from idsync.portal.admin import refusal
from idsync.portal.web import PortalRoute, Viewing, render
from idsync.services import directory_browse

router = APIRouter(route_class=PortalRoute)

PAGE = 50


def link(store: str, view: str = "", **query: str | int) -> str:
    """The address of a page of store *store*'s browser (*view* ``entry`` or ``search``)."""
    path = f"/directory/{store}" + (f"/{view}" if view else "")
    shown = {name: value for name, value in query.items() if value != ""}
    return path + (f"?{urlencode(shown)}" if shown else "")


def ancestors(dn: str, base: str) -> list[str]:
    """The DNs from *base* down to *dn*'s parent, for the path shown above a level or an entry."""
    chain: list[str] = []
    current = dn
    while current and not dn_equal(current, base):
        current = parent_dn(current)
        chain.append(current)
    return list(reversed(chain)) if current else []


@router.get("/directory")
def list_stores(request: Request, who: Viewing) -> Response:
    return render(request, "directory_stores.html", who, stores=directory_browse.stores(who.ws))


@router.get("/directory/{store}")
def show_level(request: Request, who: Viewing, store: str, dn: str = "") -> Response:
    base = directory_browse.base_of(who.ws, store)
    level = directory_browse.children(who.ws, store, dn.strip() or base, limit=directory_browse.MAX_PAGE)
    return render(request, "directory_level.html", who, store=store, base=base, level=level,
                  path_to=ancestors(level.dn, base), link=link)


@router.get("/directory/{store}/entry")
def show_entry(request: Request, who: Viewing, store: str, dn: str) -> Response:
    base = directory_browse.base_of(who.ws, store)
    found = directory_browse.entry(who.ws, store, dn)
    return render(request, "directory_entry.html", who, store=store, base=base, entry=found,
                  path_to=ancestors(found.dn, base), link=link)


@router.get("/directory/{store}/search")
def search(
    request: Request, who: Viewing, store: str, filter: str = "", base: str = "", scope: str = "sub",
    offset: int = 0,
) -> Response:
    shown: dict[str, Any] = {"store": store, "filter": filter, "base": base, "scope": scope, "scopes": [s.value for s in Scope],
             "link": link, "page": PAGE}
    if not filter.strip():
        return render(request, "directory_search.html", who, found=None, message=None, **shown)
    try:
        try:
            wanted = Scope(scope)
        except ValueError as exc:
            raise ConfigError(f"{scope!r} is not a scope: base, one or sub", field="scope") from exc
        found = directory_browse.search_page(who.ws, store, filter.strip(), base=base.strip() or None,
                                             scope=wanted, offset=offset, limit=PAGE)
    except (ConfigError, NotFoundError, ConnectorError) as exc:
        return render(request, "directory_search.html", who, status=422, found=None, message=refusal(exc), **shown)
    return render(request, "directory_search.html", who, found=found, message=None, **shown)
