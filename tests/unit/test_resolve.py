"""Resolve: values → DNs through indexes read once per run, on the embedded directory."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.definitions import FieldMapping, JobDefinition
from idsync.domain.entry import Attrs, Entry, Scope
from idsync.engine.mapping import MappedRecord
from idsync.engine.resolve import IndexSpec, Resolver, ValueIndex, same_dns
from idsync.errors import ConnectorError, NotFoundError, RecordError

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"


class CountingDirectory:
    """A real directory that counts the searches made through it."""

    def __init__(self, inner: LocalDirectory) -> None:
        self.inner = inner
        self.searches: list[tuple[str, str]] = []

    def search(
        self, base: str, scope: Scope = Scope.SUB, filterstr: str = "(objectClass=*)", attributes: Sequence[str] | None = None
    ) -> Iterator[Entry]:
        self.searches.append((base, filterstr))
        return self.inner.search(base, scope, filterstr, attributes)

    def apply(self, changes: Any) -> Any:
        return self.inner.apply(changes)

    def schema(self) -> Any:
        return self.inner.schema()

    def test(self) -> str:
        return self.inner.test()

    def close(self) -> None:
        self.inner.close()


def person(uid: str, number: str, cn: str | None = None) -> Change:
    attrs = Attrs({"objectClass": ["inetOrgPerson"], "uid": [uid], "cn": [cn or uid], "sn": [uid], "employeeNumber": [number]})
    return Change(ChangeOp.CREATE, f"uid={uid},{PEOPLE}", attrs=attrs)


@pytest.fixture
def directory(tmp_path: Path) -> CountingDirectory:
    d = LocalDirectory(tmp_path / "dir.db", suffix=SUFFIX)
    ou = Change(ChangeOp.CREATE, PEOPLE, attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["People"]}))
    people = [person("ada", "100"), person("alan", "200"), person("twin1", "300"), person("twin2", "300")]
    assert [o.error for o in d.apply([ou, *people])] == [None] * 5
    return CountingDirectory(d)


def job(resolve: dict[str, Any], **extra: Any) -> JobDefinition:
    return JobDefinition.model_validate({
        "name": "people",
        "source": "hr",
        "destination": {"store": "dir", "container": PEOPLE},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "manager", "from": "boss", "resolve": {"base_dn": PEOPLE, "attribute": "employeeNumber", **resolve}},
            *extra.get("mappings", []),
        ],
    })


def record(values: dict[str, tuple[str, ...]], key: str = "e1") -> MappedRecord:
    return MappedRecord((key,), key, values, 7)


def test_a_value_becomes_the_dn_of_the_object_holding_it(directory: CountingDirectory) -> None:
    resolver = Resolver(job({}), directory)  # type: ignore[arg-type]
    values, reported = resolver.resolve(record({"uid": ("e1",), "manager": ("100",)}))
    assert values["manager"] == (f"uid=ada,{PEOPLE}",)
    assert values["uid"] == ("e1",) and reported == []


def test_unresolved_values_fail_the_record_by_default(directory: CountingDirectory) -> None:
    resolver = Resolver(job({}), directory)  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="'999' matches no object under ou=People") as caught:
        resolver.resolve(record({"manager": ("999",)}))
    assert (caught.value.key, caught.value.attribute, caught.value.line) == ("e1", "manager", 7)
    with pytest.raises(RecordError, match="'300' matches several objects"):
        resolver.resolve(record({"manager": ("300",)}))


def test_a_lookup_base_that_does_not_exist_is_a_connector_error(directory: CountingDirectory) -> None:
    resolver = Resolver(job({"base_dn": f"ou=Nowhere,{SUFFIX}"}), directory)  # type: ignore[arg-type]
    with pytest.raises(ConnectorError, match=r"ou=Nowhere.* does not exist") as caught:
        resolver.prefetch()
    assert not isinstance(caught.value, NotFoundError) and caught.value.hint


def test_report_leaves_unresolved_values_out_and_goes_on(directory: CountingDirectory) -> None:
    resolver = Resolver(job({"unresolved": "report"}), directory)  # type: ignore[arg-type]
    values, reported = resolver.resolve(record({"manager": ("999", "200", "300")}))
    assert values["manager"] == (f"uid=alan,{PEOPLE}",)
    assert [r.message for r in reported] == [
        f"employeeNumber '999' matches no object under {PEOPLE}; left out",
        f"employeeNumber '300' matches several objects under {PEOPLE}; left out",
    ]
    assert all(r.key == "e1" and r.attribute == "manager" for r in reported)


def test_values_compare_without_case_or_extra_spaces(directory: CountingDirectory) -> None:
    resolver = Resolver(job({"attribute": "uid"}), directory)  # type: ignore[arg-type]
    values, _ = resolver.resolve(record({"manager": ("  ADA ",)}))
    assert values["manager"] == (f"uid=ada,{PEOPLE}",)


def test_each_index_is_read_once_per_run_and_shared(directory: CountingDirectory) -> None:
    second = {"attribute": "secretary", "from": "assistant",
              "resolve": {"base_dn": PEOPLE.upper(), "attribute": "EmployeeNumber"}}
    resolver = Resolver(job({}, mappings=[second]), directory)  # type: ignore[arg-type]
    assert directory.searches == []  # nothing is read before a record needs it
    for i in range(50):
        resolver.resolve(record({"manager": ("100",), "secretary": ("200",)}, key=f"e{i}"))
    # Same base (DN compared as a DN), scope, filter and attribute: one index, one search.
    assert len(directory.searches) == 1 and resolver.searches == 1
    other = Resolver(job({"filter": "(uid=a*)"}), directory)  # type: ignore[arg-type]
    other.resolve(record({"manager": ("100",)}))
    assert len(directory.searches) == 2


def test_records_without_values_need_no_index(directory: CountingDirectory) -> None:
    resolver = Resolver(job({}), directory)  # type: ignore[arg-type]
    values, _ = resolver.resolve(record({"uid": ("e1",), "manager": ()}))
    assert values["manager"] == () and directory.searches == []


def test_value_index() -> None:
    index = ValueIndex.build(
        [
            Entry("cn=a,o=x", Attrs({"mail": ["A@x.org", "a@X.org"]})),  # one object, two spellings
            Entry("cn=b,o=x", Attrs({"mail": ["b@x.org"]})),
            Entry("cn=c,o=x", Attrs({"mail": ["B@x.org"]})),
        ],
        "mail",
    )
    assert index.lookup("a@x.org") == (True, "cn=a,o=x")
    assert index.lookup("b@x.org") == (True, None)
    assert index.lookup("z@x.org") == (False, None)
    assert index.size == 3 and len(index) == 2


def test_index_spec_compares_base_dns_as_dns() -> None:
    rule = FieldMapping.model_validate(
        {"attribute": "manager", "from": "m", "resolve": {"base_dn": "OU=People, DC=Example,DC=org", "attribute": "UID"}}
    ).resolve
    assert rule is not None
    spec = IndexSpec.of(rule)
    assert spec.base_dn == IndexSpec.of(rule.model_copy(update={"base_dn": PEOPLE})).base_dn
    assert spec.attribute == "uid"


def test_dn_values_compare_as_dns() -> None:
    assert same_dns(("uid=Ada,ou=People,dc=example,dc=org",), ("UID=ada, ou=people,DC=example,dc=org",))
    assert not same_dns(("uid=ada,o=x",), ("uid=alan,o=x",))
    assert not same_dns(("uid=ada,o=x",), ("uid=ada,o=x", "uid=alan,o=x"))


def test_members_is_the_former_name_of_resolve_with_report() -> None:
    m = FieldMapping.model_validate(
        {"attribute": "member", "from": "members", "members": {"base_dn": PEOPLE, "attribute": "uid"}}
    )
    assert m.resolve is not None and m.resolve.unresolved == "report" and m.resolve.attribute == "uid"
    with pytest.raises(ValidationError, match="not both"):
        FieldMapping.model_validate({
            "attribute": "member", "from": "m",
            "members": {"base_dn": PEOPLE, "attribute": "uid"}, "resolve": {"base_dn": PEOPLE, "attribute": "uid"},
        })
    with pytest.raises(ValidationError, match="cannot use resolve"):
        FieldMapping.model_validate(
            {"attribute": "uid", "from": "id", "key": True, "resolve": {"base_dn": PEOPLE, "attribute": "uid"}}
        )
