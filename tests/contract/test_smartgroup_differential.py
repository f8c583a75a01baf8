"""Differential test: smart group membership against ``ldapsearch``, the C tool [S8.1].

For every filter of the directory contract suite, the same entries are
loaded into slapd and into the embedded directory, and the membership
idsync computes for a smart group whose query is that filter is compared
with what ``ldapsearch -LLL -x -H ldap://… -b BASE FILTER dn`` returns from
slapd: idsync's computation on slapd, on the embedded directory, and the
evaluation of the filter over the entries themselves (the code a
collection's preview uses on the entries its plans would leave) must all
give ldapsearch's DNs.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from idsync.connectors.base import Directory
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs, Scope
from idsync.domain.filters import escape_filter_value
from idsync.domain.principals import Principal
from idsync.domain.smartgroups import SmartGroup
from idsync.services import smartgroups
from idsync.services.workspace import Workspace
from idsync.smartgroups.overlay import Overlay
from tests.contract import test_search
from tests.contract.conftest import SUFFIX, _ensure_suffix, _open_local, _open_slapd, ou, person
from tests.servers.slapd import SlapdServer

pytestmark = pytest.mark.slapd

NASTY = test_search.NASTY


def _marked_filters() -> list[str]:
    """The filters of the contract suite's parametrized filter test."""
    mark = next(m for m in test_search.test_filters.pytestmark if m.name == "parametrize")
    return [filterstr for filterstr, _expected in mark.args[1]]


FILTERS = [
    *_marked_filters(),
    # test_search: ordering, escaped values
    "(uidNumber>=10)", "(uidNumber<=10)", "(&(uidNumber>=6)(uidNumber<=99))",
    *(f"(description={escape_filter_value(v)})" for v in NASTY),
    *(f"(&(objectClass=person)(description={escape_filter_value(v)}))" for v in NASTY),
    *(f"(cn={escape_filter_value(v)})" for v in ("User v1", "user V1", "*", "R, D")),
    # test_directory_tools: dn-attribute and extensible filters, a comma in a value
    "(ou:dn:=people)", "(ou:dn:=STAFF)", "(&(objectClass=inetOrgPerson)(!(ou:dn:=people)))",
    "(uid:dn:caseExactMatch:=a)", "(ou=R, D)",
    # test_apply and others
    "(objectClass=*)", "(objectClass=inetOrgPerson)", "(uid=ivy)", "(uid=nobody)", "(uid=p*)", "(uid=z)",
]


def _entries(base: str) -> list[Change]:
    """Every entry the contract suite's filter tests search, under *base*."""
    dn = lambda rdn: f"{rdn},{base}"  # noqa: E731
    return [
        ou(dn("ou=a"), "a"),
        person(dn("uid=x,ou=a"), "x", cn="Xavier Lopez", mail="x@example.org", title="Engineer"),
        ou(dn("ou=b,ou=a"), "b"),
        person(dn("uid=y,ou=b,ou=a"), "y", cn="Yolanda Smith", title="Manager"),
        person(dn("uid=z"), "z", cn="Zoe Lopez", mail=["z@example.org", "zoe@example.org"]),
        *(person(dn(f"uid={u}"), u, objectClass=["inetOrgPerson", "posixAccount"], uidNumber=n, gidNumber="100",
                 homeDirectory=f"/home/{u}") for u, n in (("n5", "5"), ("n10", "10"), ("n100", "100"))),
        *(person(dn(f"uid=v{i}"), f"v{i}", description=value) for i, value in enumerate(NASTY)),
        ou(dn("ou=People"), "People"),
        ou(dn("ou=Staff,ou=People"), "Staff"),
        person(dn("uid=a,ou=Staff,ou=People"), "a"),
        person(dn("uid=b"), "b", ou="people"),
        person(dn("uid=c"), "c"),
        person(dn("uid=ivy"), "ivy"),
        *(person(dn(f"uid=p{i}"), f"p{i}") for i in range(3)),
        Change(ChangeOp.CREATE, dn("ou=R\\2C D+l=Paris"), key="rd",
               attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["R, D"], "l": ["Paris"]})),
    ]


@dataclass
class Pair:
    """The same entries in slapd and in the embedded directory, each under a container of its own."""

    slapd: SlapdServer
    ldap: Directory
    ldap_base: str
    local: Directory
    local_base: str
    entries: list[Change]  # as created under local_base
    ws: Workspace


def _load(directory: Directory, base: str) -> list[Change]:
    name = base.split(",", 1)[0].split("=", 1)[1]
    changes = [ou(base, name), *_entries(base)]
    errors = [o.error for o in directory.apply(changes) if o.error is not None]
    assert not errors, errors[0]
    return changes[1:]


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    slapd: SlapdServer = request.getfixturevalue("slapd")
    local = _open_local(tmp_path_factory.mktemp("differential") / "local-directory")
    ldap_ = _open_slapd(request)
    try:
        _ensure_suffix(local)
        name = f"d{uuid.uuid4().hex[:12]}"
        ldap_base, local_base = f"ou={name},{slapd.base_dn}", f"ou={name},{SUFFIX}"
        _load(ldap_, ldap_base)
        entries = _load(local, local_base)
        yield Pair(slapd, ldap_, ldap_base, local, local_base, entries, Workspace(principal=Principal("tester")))
    finally:
        local.close()
        ldap_.close()


def _relative(dns: object, base: str) -> set[str]:
    """The DNs (normalised) with the container's DN cut off, so both directories compare."""
    tail = "," + normalize_dn(base)
    out = set()
    for dn in dns:  # type: ignore[attr-defined]
        key = normalize_dn(dn)
        out.add(key.removesuffix(tail) if key != normalize_dn(base) else "")
    return out


def ldapsearch(slapd: SlapdServer, base: str, filterstr: str) -> list[str]:
    """The DNs ``ldapsearch -LLL`` prints for *filterstr* under *base* (LDIF unfolded, base64 decoded)."""
    done = subprocess.run(
        ["ldapsearch", "-LLL", "-x", "-H", slapd.url, "-D", slapd.root_dn, "-w", slapd.root_pw,
         "-b", base, filterstr, "dn"],
        capture_output=True, timeout=30, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    lines: list[str] = []
    for line in done.stdout.decode("utf-8").splitlines():
        if line.startswith(" ") and lines:
            lines[-1] += line[1:]
        elif line:
            lines.append(line)
    out = []
    for line in lines:
        if line.startswith("dn:: "):
            out.append(base64.b64decode(line[5:]).decode("utf-8"))
        elif line.startswith("dn: "):
            out.append(line[4:])
    return out


def _membership(pair: Pair, directory: Directory, base: str, filterstr: str) -> set[str]:
    group = SmartGroup.model_validate({
        "name": "g", "store": "s", "dn": f"cn=g,{base}", "queries": [{"base": base, "filter": filterstr}],
    })
    searcher = smartgroups.Searcher(pair.ws, directory, base)
    return _relative(searcher.target(group).values(), base)


@pytest.mark.parametrize("filterstr", FILTERS)
def test_membership_equals_ldapsearch(pair: Pair, filterstr: str) -> None:
    expected = _relative(ldapsearch(pair.slapd, pair.ldap_base, filterstr), pair.ldap_base)
    assert _membership(pair, pair.ldap, pair.ldap_base, filterstr) == expected, "idsync on slapd"
    assert _membership(pair, pair.local, pair.local_base, filterstr) == expected, "idsync on the embedded directory"
    overlay = Overlay()
    overlay.apply_all(pair.entries, lambda _dn: None)
    found = overlay.matching(pair.local_base, Scope.SUB, filterstr, smartgroups.filter_rules())
    expected_without_base = expected - {""}  # the container itself is not among the entries overlaid
    assert _relative(found.values(), pair.local_base) == expected_without_base, "filter evaluated over the entries"


def test_the_differential_covers_something(pair: Pair) -> None:
    """A guard against a vacuous pass: ldapsearch finds entries, and not all of them."""
    everything = ldapsearch(pair.slapd, pair.ldap_base, "(objectClass=*)")
    assert len(everything) == len(pair.entries) + 1
    assert 0 < len(ldapsearch(pair.slapd, pair.ldap_base, "(mail=*)")) < len(everything)


