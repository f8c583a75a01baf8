"""Containers that do not exist yet: finding them, and planning against them.

A container is created with its missing parents, top down, below the first
ancestor that exists (the directory's suffix entry at the latest: a naming
context is never created). :func:`missing_chain` finds those DNs with one
base search per level; :func:`container_changes` turns them into creates
(object classes from :mod:`idsync.domain.containers`).

:class:`PlannedContainers` is a job's destination directory as it will be
once the job's container exists (``create_container``), and once the
containers that earlier jobs of the same collection create exist: a search
of a base inside such a container finds nothing instead of failing, and the
job's plan starts with the creates of its missing containers
(:meth:`PlannedContainers.missing_containers`, which the planner asks for).
Everything else is the directory's own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import Any

from idsync.connectors.base import ApplyOutcome, Directory, DirectorySchema
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.containers import container_attrs
from idsync.domain.dn import format_dn, is_within, normalize_dn, parse_dn
from idsync.domain.entry import Entry, Scope
from idsync.errors import ConnectorError, NotFoundError


def exists(directory: Directory, dn: str) -> bool:
    """True when *dn* names an entry of *directory* (one base search, DNs only)."""
    try:
        for _entry in directory.search(dn, Scope.BASE, "(objectClass=*)", ["1.1"]):
            return True
    except NotFoundError:
        return False
    return False


def missing_chain(directory: Directory, dn: str, present: Callable[[str], bool] | None = None) -> list[str]:
    """The DNs to create for *dn* to exist, top down: its missing ancestors,
    then *dn* itself; empty when it exists.

    *present* overrides what counts as existing (default: :func:`exists`).
    Raises ConnectorError when no ancestor exists at all: the directory's
    suffix entry must exist before anything is created below it.
    """
    present = present or (lambda d: exists(directory, d))
    rdns = parse_dn(dn)
    missing: list[str] = []
    for depth in range(len(rdns)):
        candidate = dn if depth == 0 else format_dn(rdns[depth:])
        if present(candidate):
            return missing[::-1]
        missing.append(candidate)
    raise ConnectorError(
        f"cannot create {dn}: none of the entries above it exists in the directory",
        field="container",
        hint="check the DN's suffix (the directory's root entry must exist), or create the root entry first",
    )


def container_changes(dns: Iterable[str], flavor: str = "generic") -> list[Change]:
    """Creates of the container entries *dns*, in the order given (parents first)."""
    return [Change(ChangeOp.CREATE, dn, key=dn, attrs=container_attrs(dn, flavor)) for dn in dns]


class PlannedContainers:
    """A job's destination directory, with containers planned but not there yet.

    *container* is the job's container when it is to be created
    (``create_container``), else None; *assumed* are DNs of entries earlier
    jobs of the same collection create, taken as existing. Searching below
    either, while it is missing, finds nothing.
    """

    def __init__(self, directory: Directory, container: str | None, assumed: Collection[str] = ()) -> None:
        self.directory = directory
        self.container = container
        self._assumed = {normalize_dn(dn) for dn in assumed}
        self._chain: list[str] | None = None

    def _present(self, dn: str) -> bool:
        return normalize_dn(dn) in self._assumed or exists(self.directory, dn)

    def missing_containers(self) -> list[Change]:
        """Creates of the job's container and its missing parents, top down
        (found once, when first asked); none without ``create_container``."""
        if self.container is None:
            return []
        if self._chain is None:
            self._chain = missing_chain(self.directory, self.container, self._present)
        return container_changes(self._chain, getattr(self.directory, "flavor", "generic"))

    def _planned(self, base: str) -> bool:
        """True when *base* is inside a container that is planned, not there yet."""
        roots = list(self._assumed)
        if self.container is not None:
            if self._chain is None:
                self._chain = missing_chain(self.directory, self.container, self._present)
            roots.extend(self._chain[:1])
        return any(is_within(base, root, Scope.SUB) for root in roots)

    # ------------------------------------------------------------ Directory

    def search(
        self,
        base: str,
        scope: Scope = Scope.SUB,
        filterstr: str = "(objectClass=*)",
        attributes: Sequence[str] | None = None,
    ) -> Iterator[Entry]:
        """The directory's search; inside a planned container that is missing, nothing."""
        try:
            found = self.directory.search(base, scope, filterstr, attributes)
        except NotFoundError:
            if self._planned(base):
                return iter(())
            raise
        return self._guarded(base, found)

    def _guarded(self, base: str, found: Iterator[Entry]) -> Iterator[Entry]:
        # A connector that searches lazily says "no such base" at the first entry asked for.
        try:
            yield from found
        except NotFoundError:
            if not self._planned(base):
                raise

    def apply(self, changes: Iterable[Change]) -> Iterator[ApplyOutcome]:
        return self.directory.apply(changes)

    def schema(self) -> DirectorySchema | None:
        return self.directory.schema()

    def test(self) -> str:
        return self.directory.test()

    def close(self) -> None:
        self.directory.close()

    def __getattr__(self, name: str) -> Any:
        # What only some directories offer (anchor_attributes, checks_values, flavor…).
        if name == "directory":
            raise AttributeError(name)
        return getattr(self.directory, name)
