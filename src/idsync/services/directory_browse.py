"""Reading a store's tree one step at a time, for a directory browser:
the children of an entry, one entry with its attributes as they may be
shown, and one bounded page of a search.

Read-only: operators and auditors (and so administrators) may browse; an
approver, who only decides requests, may not. Every
read is bounded: a level or a page lists at most :data:`MAX_PAGE` entries
and a search skips at most :data:`MAX_SKIP`, so a browser never holds a
whole directory. An attribute value is shown as text only when it is text:
a binary one (a photo, a certificate) as its size, and a secret
(``userPassword`` and its kin) never, only masked.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from itertools import islice
from typing import Any

from idsync.domain.dn import parse_dn
from idsync.domain.entry import Entry, Scope
from idsync.domain.roles import Role
from idsync.errors import ConfigError, NotFoundError, quoted
from idsync.services import authz, connections, definitions
from idsync.services.directory import EVERYTHING, default_base, search
from idsync.services.workspace import Workspace

BROWSERS = (Role.OPERATOR, Role.AUDITOR)
"""Who may browse a store's entries (an administrator holds both)."""
MAX_PAGE = 200
MAX_SKIP = 10_000
SECRET_ATTRIBUTES = frozenset({
    "userpassword", "authpassword", "unicodepwd", "sambantpassword", "sambalmpassword",
    "ntpassword", "lmpassword", "supplementalcredentials", "dbcspwd", "ntpwdhistory", "lmpwdhistory",
})
"""Attributes whose values are never shown, by lower-case name."""
MASKED = "(secret, not shown)"


@dataclass(frozen=True)
class ValueView:
    """A value as it may be shown: its text, or for a binary or secret value only a description."""

    text: str
    binary: bool = False
    secret: bool = False


@dataclass(frozen=True)
class AttributeView:
    name: str
    values: tuple[ValueView, ...]


@dataclass(frozen=True)
class EntryView:
    dn: str
    attributes: tuple[AttributeView, ...]


@dataclass(frozen=True)
class Level:
    """The children of *dn* in a store: the first *limit* of them, and whether more follow."""

    store: str
    dn: str
    children: tuple[str, ...]
    more: bool


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: the DNs found from *offset*, and whether more follow."""

    dns: tuple[str, ...]
    offset: int
    more: bool


def is_binary(value: str) -> bool:
    """Whether a value read from a directory is binary (kept with
    ``surrogateescape``, or holding control characters) rather than text."""
    return any(0xDC80 <= ord(c) <= 0xDCFF or (ord(c) < 32 and c not in "\t\n\r") for c in value)


def value_view(attribute: str, value: str) -> ValueView:
    """*value* of *attribute* as it may be shown (see the module docstring)."""
    if attribute.lower() in SECRET_ATTRIBUTES:
        return ValueView(MASKED, secret=True)
    if is_binary(value):
        raw = value.encode("utf-8", "surrogateescape")
        return ValueView(f"(binary, {len(raw)} bytes; {len(base64.b64encode(raw))} characters in base64)", binary=True)
    return ValueView(value)


def entry_view(entry: Entry) -> EntryView:
    """*entry* with each value as it may be shown, attributes by name."""
    return EntryView(entry.dn, tuple(
        AttributeView(name, tuple(value_view(name, v) for v in values))
        for name, values in sorted(entry.attrs.items(), key=lambda item: item[0].lower())
    ))


def _may_browse(ws: Workspace) -> None:
    authz.require_any(ws, BROWSERS, "browse the entries of identity stores")


def _no_entry(store: str, dn: str) -> NotFoundError:
    """The refusal of a DN that is not in the store (the connector's own names a file or a server)."""
    return NotFoundError(f"store {quoted(store)} has no entry {quoted(dn)}", field="dn",
                         hint="browse the tree from its base to find the entry")


def _bounded(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise ConfigError(f"a page lists 1 to {MAX_PAGE} entries, not {limit}", field="limit")
    return limit


def stores(ws: Workspace) -> list[Any]:
    """The identity stores one may browse (their definitions, secrets left out)."""
    _may_browse(ws)
    return definitions.list_definitions(ws, "store")


def base_of(ws: Workspace, store: str) -> str:
    """Where store *store*'s tree starts (its suffix, base DN or first naming context)."""
    _may_browse(ws)
    loaded = definitions.load(ws, "store", store)
    with connections.directory(ws, store) as directory:
        return default_base(loaded.definition, directory)


def children(ws: Workspace, store: str, dn: str | None = None, *, limit: int = MAX_PAGE) -> Level:
    """The entries right under *dn* (default: the store's base), the first *limit*."""
    _may_browse(ws)
    limit = _bounded(limit)
    base = dn or base_of(ws, store)
    found = search(ws, store, base=base, scope=Scope.ONE, filterstr=EVERYTHING, attributes=["objectClass"])
    try:
        dns = [e.dn for e in islice(found, limit + 1)]
    except NotFoundError as exc:
        raise _no_entry(store, base) from exc
    finally:
        found.close()
    return Level(store, base, tuple(dns[:limit]), len(dns) > limit)


def entry(ws: Workspace, store: str, dn: str) -> EntryView:
    """Entry *dn* of *store* with its user attributes, as they may be shown."""
    _may_browse(ws)
    parse_dn(dn)
    found = search(ws, store, base=dn, scope=Scope.BASE, filterstr=EVERYTHING)
    try:
        first = next(found, None)
    except NotFoundError:
        first = None  # a missing base: said the same way as a filter that matched nothing
    finally:
        found.close()
    if first is None:
        raise _no_entry(store, dn)
    return entry_view(first)


def search_page(
    ws: Workspace, store: str, filterstr: str, *, base: str | None = None, scope: Scope = Scope.SUB,
    offset: int = 0, limit: int = 50,
) -> SearchPage:
    """The DNs of *store*'s entries matching *filterstr*, from the *offset*-th, at most *limit*."""
    _may_browse(ws)
    limit = _bounded(limit)
    if not 0 <= offset <= MAX_SKIP:
        raise ConfigError(f"a search pages through its first {MAX_SKIP} entries at most",
                          field="offset", hint="narrow the filter or the base")
    found = search(ws, store, base=base or None, scope=scope, filterstr=filterstr or EVERYTHING,
                   attributes=["objectClass"])
    try:
        dns = [e.dn for e in islice(found, offset, offset + limit + 1)]
    except NotFoundError as exc:
        raise _no_entry(store, base or "") from exc
    finally:
        found.close()
    return SearchPage(tuple(dns[:limit]), offset, len(dns) > limit)
