"""Containers: their object class from the RDN, the missing chain, and planning against containers not there yet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import ChangeOp
from idsync.domain.containers import container_attrs
from idsync.domain.entry import Attrs, Scope
from idsync.engine.containers import PlannedContainers, container_changes, missing_chain
from idsync.errors import ConfigError, ConnectorError, NotFoundError

SUFFIX = "dc=example,dc=org"


@pytest.fixture
def d(tmp_path: Path) -> Iterator[LocalDirectory]:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as directory:
        yield directory


@pytest.mark.parametrize(
    ("dn", "classes"),
    [
        ("ou=People,dc=example,dc=org", ("top", "organizationalUnit")),
        ("organizationalUnitName=People,dc=example,dc=org", ("top", "organizationalUnit")),
        ("o=Acme,dc=example,dc=org", ("top", "organization")),
        ("dc=eu,dc=example,dc=org", ("top", "domain")),
        ("c=DE,dc=example,dc=org", ("top", "country")),
        ("l=Berlin,dc=example,dc=org", ("top", "locality")),
        ("st=Bavaria,dc=example,dc=org", ("top", "locality")),
    ],
)
def test_the_rdn_decides_the_object_class(dn: str, classes: tuple[str, ...]) -> None:
    attrs = container_attrs(dn)
    assert attrs["objectClass"] == classes
    name, value = dn.split(",", 1)[0].split("=")
    assert attrs[name] == (value,), "the RDN value is written"


def test_a_multi_valued_rdn_writes_each_value() -> None:
    assert container_attrs("ou=Sales+l=Berlin,dc=example,dc=org") == Attrs(
        {"objectClass": ["top", "organizationalUnit"], "ou": ["Sales"], "l": ["Berlin"]}
    )


def test_cn_is_a_container_on_active_directory_only() -> None:
    assert container_attrs("cn=Users,dc=corp,dc=example", "active_directory")["objectClass"] == ("top", "container")
    with pytest.raises(ConfigError, match="cannot tell which object class") as info:
        container_attrs("cn=Users,dc=corp,dc=example")
    assert info.value.hint and "ou=" in info.value.hint


def test_the_missing_chain_runs_top_down_below_the_first_existing_entry(d: LocalDirectory) -> None:
    dn = "ou=Staff,ou=People,dc=example,dc=org"
    assert missing_chain(d, dn) == ["ou=People,dc=example,dc=org", dn]
    changes = container_changes(missing_chain(d, dn))
    assert [c.op for c in changes] == [ChangeOp.CREATE, ChangeOp.CREATE]
    assert all(o.error is None for o in d.apply(changes))
    assert missing_chain(d, dn) == []


def test_no_existing_ancestor_is_refused(d: LocalDirectory) -> None:
    with pytest.raises(ConnectorError, match="none of the entries above it exists"):
        missing_chain(d, "ou=People,dc=other,dc=com")


def test_a_planned_container_is_searched_as_empty_and_planned_first(d: LocalDirectory) -> None:
    planned = PlannedContainers(d, "ou=Staff,ou=People,dc=example,dc=org")
    assert list(planned.search("ou=Staff,ou=People,dc=example,dc=org", Scope.SUB)) == []
    assert list(planned.search("ou=People,dc=example,dc=org", Scope.ONE)) == []
    with pytest.raises(NotFoundError):
        list(planned.search("ou=Elsewhere,dc=example,dc=org"))
    assert [c.dn for c in planned.missing_containers()] == [
        "ou=People,dc=example,dc=org", "ou=Staff,ou=People,dc=example,dc=org",
    ]
    assert planned.checks_values("cn") is d.checks_values("cn"), "the rest is the directory's own"


def test_a_container_an_earlier_job_creates_is_taken_as_existing(d: LocalDirectory) -> None:
    assumed = PlannedContainers(d, None, assumed=["ou=People,dc=example,dc=org"])
    assert list(assumed.search("ou=People,dc=example,dc=org")) == []
    assert assumed.missing_containers() == [], "without create_container nothing is planned"
    both = PlannedContainers(d, "ou=Staff,ou=People,dc=example,dc=org", assumed=["OU=people,DC=example,DC=org"])
    assert [c.dn for c in both.missing_containers()] == ["ou=Staff,ou=People,dc=example,dc=org"]


def test_once_created_the_container_is_searched_for_real(d: LocalDirectory) -> None:
    planned = PlannedContainers(d, "ou=People,dc=example,dc=org")
    assert all(o.error is None for o in planned.apply(planned.missing_containers()))
    assert [e.dn for e in planned.search("ou=People,dc=example,dc=org")] == ["ou=People,dc=example,dc=org"]
