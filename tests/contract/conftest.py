"""One contract suite, run against every directory implementation.

Each test gets a ``box``: a directory (``local``, the embedded one in a
fresh file, or ``slapd``, :class:`LdapDirectory` against the session's
server) and a container of its own (``ou=t<hex>`` under the suffix), so
tests never see each other's entries and the server is never restarted.
Select one implementation with ``-k local`` or ``-k slapd``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from idsync.connectors.base import ApplyOutcome, Directory
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.entry import Attrs, Entry, Scope
from idsync.errors import NotFoundError

SUFFIX = "dc=example,dc=org"
PERSON = ("top", "person", "organizationalPerson", "inetOrgPerson")


@dataclass
class Box:
    """A directory under test and the container this test owns."""

    kind: str
    directory: Directory
    base: str

    def dn(self, rdn: str) -> str:
        return f"{rdn},{self.base}"

    def apply(self, *changes: Change) -> list[ApplyOutcome]:
        outcomes = list(self.directory.apply(changes))
        assert len(outcomes) == len(changes), "one outcome per change"
        return outcomes

    def apply_ok(self, *changes: Change) -> None:
        """Apply and insist every change succeeded (shows the first error otherwise)."""
        errors = [o.error for o in self.apply(*changes) if o.error is not None]
        assert not errors, f"{len(errors)} change(s) failed, first: {errors[0]}"

    def fails(self, change: Change) -> str:
        """Apply one change that must fail; return its error message."""
        (outcome,) = self.apply(change)
        assert outcome.error is not None, f"{change.op} {change.dn} should have failed"
        assert outcome.change == change
        assert outcome.error.key == change.key
        return outcome.error.message

    def get(self, dn: str, attributes: Sequence[str] | None = None) -> Entry | None:
        try:
            found = list(self.directory.search(dn, Scope.BASE, "(objectClass=*)", attributes))
        except NotFoundError:
            return None
        assert len(found) == 1
        return found[0]

    def find(
        self, filterstr: str, scope: Scope = Scope.SUB, attributes: Sequence[str] | None = None,
        base: str | None = None,
    ) -> list[Entry]:
        return list(self.directory.search(base or self.base, scope, filterstr, attributes))

    def find_rdns(self, filterstr: str, scope: Scope = Scope.SUB, base: str | None = None) -> set[str]:
        """First-RDN values (lower-cased) of the entries matching below the base, for compact assertions."""
        base = base or self.base
        return {
            e.dn.split(",", 1)[0].split("=", 1)[1].lower()
            for e in self.find(filterstr, scope, base=base)
            if e.dn.lower() != base.lower()
        }


def person(dn: str, uid: str, key: str | None = None, **extra: Iterable[str] | str) -> Change:
    """A CREATE of an inetOrgPerson with the required cn and sn."""
    attrs: dict[str, Iterable[str] | str] = {
        "objectClass": PERSON, "uid": uid, "cn": f"User {uid}", "sn": uid.title(),
    }
    attrs.update(extra)
    return Change(ChangeOp.CREATE, dn, key=key or uid, attrs=Attrs(attrs))


def ou(dn: str, name: str) -> Change:
    return Change(ChangeOp.CREATE, dn, key=name, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": [name]}))


def update(dn: str, *mods: tuple[ModOp, str, Sequence[str]], key: str = "") -> Change:
    return Change(
        ChangeOp.UPDATE, dn, key=key or dn,
        mods=tuple(Modification(op, attr, tuple(vals)) for op, attr, vals in mods),
    )


def _open_local(path: Path) -> Directory:
    from idsync.connectors.local import LocalDirectory

    directory: Directory = LocalDirectory(path, suffix=SUFFIX)
    return directory


def _open_slapd(request: pytest.FixtureRequest) -> Directory:
    from idsync.connectors.ldap import LdapDirectory

    server = request.getfixturevalue("slapd")
    return LdapDirectory(url=server.url, bind_dn=server.root_dn, bind_password=server.root_pw)


def _ensure_suffix(directory: Directory) -> None:
    """Create the suffix entry when the implementation starts empty."""
    try:
        list(directory.search(SUFFIX, Scope.BASE))
        return
    except NotFoundError:
        pass
    (outcome,) = directory.apply(
        [Change(ChangeOp.CREATE, SUFFIX, key="suffix", attrs=Attrs({
            "objectClass": ["top", "dcObject", "organization"], "dc": ["example"], "o": ["Example"],
        }))]
    )
    assert outcome.error is None, outcome.error


@pytest.fixture(params=["local", pytest.param("slapd", marks=pytest.mark.slapd)])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Box]:
    kind: str = request.param
    directory = _open_local(tmp_path / "local-directory") if kind == "local" else _open_slapd(request)
    try:
        _ensure_suffix(directory)
        name = f"t{uuid.uuid4().hex[:12]}"
        base = f"ou={name},{SUFFIX}"
        (outcome,) = directory.apply([ou(base, name)])
        assert outcome.error is None, outcome.error
        yield Box(kind=kind, directory=directory, base=base)
    finally:
        directory.close()
