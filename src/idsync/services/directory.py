"""Directory tools for every identity store: search, LDIF export and import, containers.

The use cases behind ``idsync directory …`` and a directory browser: each
opens the store by name (an LDAP server or the embedded directory alike,
through the Directory interface) and streams. A search yields entries as
its pages arrive, an export writes each entry as it comes, an import reads
one record at a time: memory stays bounded whatever the size of the
directory or the file.

The base of a search or export defaults to the store's own: the embedded
directory's suffix, an LDAP store's ``base_dn``, else the first naming
context the server publishes in its root DSE.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from idsync.connectors.base import Directory
from idsync.connectors.files import open_source_file
from idsync.domain.dn import parse_dn
from idsync.domain.entry import Entry, Scope
from idsync.domain.ldif_reader import read_ldif
from idsync.domain.ldif_writer import HEADER, entry_record
from idsync.domain.roles import Role
from idsync.engine.containers import container_changes, missing_chain
from idsync.errors import ConfigError, ConnectorError, NotFoundError
from idsync.services import authz, connections, definitions
from idsync.services.ldif_import import EventSink, Importer, ImportResult, dry_run
from idsync.services.workspace import Workspace

EVERYTHING = "(objectClass=*)"
OPERATIONAL = ("*", "+")
"""What an export with operational attributes asks for: every user and every operational attribute."""


def default_base(definition: Any, directory: Directory) -> str:
    """Where a store's tree starts (see the module docstring)."""
    suffix = getattr(directory, "suffix", None) or getattr(definition, "suffix", None)
    if definition.kind == "local" and suffix:
        return str(suffix)
    if getattr(definition, "base_dn", None):
        return str(definition.base_dn)
    try:
        for entry in directory.search("", Scope.BASE, EVERYTHING, ["namingContexts"]):
            contexts = entry.attrs.get_values("namingContexts")
            if contexts:
                return contexts[0]
    except NotFoundError:
        pass
    raise ConfigError(
        f"store {definition.name!r} has no base_dn and its server names no naming context",
        field="base",
        hint="give the base DN, or set base_dn on the store",
    )


def search(
    ws: Workspace,
    store: str,
    *,
    base: str | None = None,
    scope: Scope = Scope.SUB,
    filterstr: str = EVERYTHING,
    attributes: Sequence[str] | None = None,
) -> Generator[Entry, None, None]:
    """The entries of *store* under *base* matching the RFC 4515 filter, as
    the directory's pages arrive; the store is closed once they are read (or
    the iterator is closed). ``attributes`` None: every user attribute;
    ``+`` adds the operational ones."""
    authz.require_reader(ws, "identity stores")
    if base is not None:
        parse_dn(base)
    loaded = definitions.load(ws, "store", store)
    return _entries(connections.open_store(loaded.definition, loaded.secrets), loaded.definition,
                    base, scope, filterstr, attributes)


def _entries(
    directory: Directory, definition: Any, base: str | None, scope: Scope, filterstr: str,
    attributes: Sequence[str] | None,
) -> Generator[Entry, None, None]:
    try:
        yield from directory.search(base or default_base(definition, directory), scope, filterstr, attributes)
    finally:
        directory.close()


def export_ldif(
    ws: Workspace,
    store: str,
    out: TextIO,
    *,
    base: str | None = None,
    scope: Scope = Scope.SUB,
    filterstr: str = EVERYTHING,
    operational: bool = False,
) -> int:
    """Write the entries of *store* to *out* as RFC 2849 LDIF (content
    records, parents before children as the directory returns them); how
    many. Operational attributes only with *operational*."""
    authz.require_reader(ws, "identity stores")
    entries = search(ws, store, base=base, scope=scope, filterstr=filterstr,
                     attributes=OPERATIONAL if operational else None)
    try:
        return write_ldif(entries, out)
    finally:
        entries.close()


def write_ldif(entries: Iterable[Entry], out: TextIO) -> int:
    """Write *entries* to *out* as an LDIF file, one record each as it comes; how many."""
    count = 0
    for entry in entries:
        if count == 0:
            out.write(HEADER + "\n")
        out.write(entry_record(entry.dn, entry.attrs.pairs()))
        count += 1
    if count == 0:
        out.write(HEADER)
    return count


def read_url(url: str) -> bytes:
    """The bytes of a ``file://`` URL of an ``attr:< URL`` line (no other scheme is read)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
        raise ConfigError(f"only file:// URLs are read, not {url!r}")
    path = Path(unquote(parts.path))
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


def import_ldif(
    ws: Workspace,
    store: str,
    path: Path,
    on_event: EventSink,
    *,
    dry_run_only: bool = False,
    stop_on_error: bool = False,
) -> ImportResult:
    """Apply the records of the LDIF file *path* to *store*, reporting each
    failure (and, in a dry run, what each record would do) to *on_event*.

    A dry run reads the whole file and writes nothing; it does not even
    connect to the store. See :mod:`idsync.services.ldif_import`.
    """
    authz.require(ws, Role.OPERATOR, "import LDIF into identity stores")
    loaded = definitions.load(ws, "store", store)
    with open_source_file(path, "LDIF file", hint="check the file's path", mode="rb") as handle:
        records = read_ldif(handle, read_url)
        if dry_run_only:
            return dry_run(records, on_event, stop_on_error)
        directory = connections.open_store(loaded.definition, loaded.secrets)
        try:
            return Importer(directory, on_event, stop_on_error=stop_on_error).run(records)
        finally:
            directory.close()


def add_container(ws: Workspace, store: str, dn: str) -> list[str]:
    """Create the container *dn* and its missing parents in *store*: see :func:`create_container`."""
    authz.require(ws, Role.OPERATOR, "create containers")
    parse_dn(dn)
    with connections.directory(ws, store) as directory:
        return create_container(directory, dn, label=f"store {store!r}")


def create_container(directory: Directory, dn: str, label: str = "the directory") -> list[str]:
    """Create the container *dn* and its missing parents, top down; the DNs
    created (none when it exists). The object class follows each RDN (see
    :mod:`idsync.domain.containers`); every one is worked out before anything
    is written."""
    chain = missing_chain(directory, dn)
    changes = container_changes(chain, getattr(directory, "flavor", "generic"))
    created: list[str] = []
    for outcome in directory.apply(changes):
        if outcome.error is not None:
            done = f" (created before it: {', '.join(created)})" if created else ""
            raise ConnectorError(f"{label}: {outcome.error.message}{done}", field="container") from outcome.error
        created.append(outcome.change.dn)
    return chain
