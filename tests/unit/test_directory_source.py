"""A directory read as a data source, against the embedded directory.

Covers the records (fields, ``dn``, multi-valued joins, absent attributes,
names as the job spells them), the scope and filter, errors that name the
source, the job-source definition, and a local-to-local job through the
engine: create, re-run with no change, one changed attribute → one update.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from idsync.connectors.directory_source import DirectorySource
from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import Change, ChangeOp, Modification, ModOp
from idsync.domain.definitions import JobDefinition, JobSource
from idsync.domain.entry import Attrs, Record, Scope
from idsync.domain.results import Counts, ErrorItem
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.planner import Planner
from idsync.errors import ConfigError, ConnectorError, NotFoundError, RecordError

SUFFIX = "dc=example,dc=org"
SRC = f"ou=Source,{SUFFIX}"
DST = f"ou=Dest,{SUFFIX}"


def create(dn: str, **attrs: list[str] | str) -> Change:
    return Change(ChangeOp.CREATE, dn, key=dn, attrs=Attrs(attrs))


def apply_ok(directory: LocalDirectory, *changes: Change) -> None:
    outcomes = list(directory.apply(changes))
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes if o.error]


@pytest.fixture
def d(tmp_path: Path) -> Iterator[LocalDirectory]:
    with LocalDirectory(tmp_path / "dir.db", SUFFIX) as directory:
        apply_ok(
            directory,
            create(SRC, objectClass="organizationalUnit", ou="Source"),
            create(f"ou=Sub,{SRC}", objectClass="organizationalUnit", ou="Sub"),
            create(DST, objectClass="organizationalUnit", ou="Dest"),
            create(f"uid=ann,{SRC}", objectClass="inetOrgPerson", uid="ann", cn="Ann Lee", sn="Lee",
                   givenName="Ann", mail="ann@example.org", telephoneNumber=["111", "222"]),
            create(f"uid=bo,{SRC}", objectClass="inetOrgPerson", uid="bo", cn="Bo Smith", sn="Smith"),
            create(f"uid=cy,ou=Sub,{SRC}", objectClass="inetOrgPerson", uid="cy", cn="Cy Ng", sn="Ng",
                   mail="cy@example.org"),
        )
        yield directory


def records(source: DirectorySource) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for item in source.read():
        assert isinstance(item, Record), item
        out[str(item.get("dn"))] = item
    return out


def test_each_entry_is_a_record_of_the_requested_attributes_and_its_dn(d: LocalDirectory) -> None:
    source = DirectorySource(d, SRC, filterstr="(objectClass=inetOrgPerson)", attributes=["uid", "mail", "telephoneNumber"])
    got = records(source)
    assert set(got) == {f"uid=ann,{SRC}", f"uid=bo,{SRC}", f"uid=cy,ou=Sub,{SRC}"}
    ann = got[f"uid=ann,{SRC}"]
    assert dict(ann.fields) == {
        "uid": "ann", "mail": "ann@example.org", "telephoneNumber": "111\n222", "dn": f"uid=ann,{SRC}",
    }
    assert got[f"uid=bo,{SRC}"].get("mail") is None  # absent attribute: None, like an empty cell
    assert ann.line is None
    assert source.columns() == ["uid", "mail", "telephoneNumber", "dn"]


def test_fields_are_named_as_the_job_spells_them_even_through_aliases(d: LocalDirectory) -> None:
    source = DirectorySource(d, SRC, filterstr="(uid=ann)", attributes=["GIVENNAME", "commonName", "surname"])
    (ann,) = records(source).values()
    assert dict(ann.fields) == {"GIVENNAME": "Ann", "commonName": "Ann Lee", "surname": "Lee", "dn": f"uid=ann,{SRC}"}


def test_without_an_attribute_list_every_user_attribute_comes_as_returned(d: LocalDirectory) -> None:
    source = DirectorySource(d, SRC, filterstr="(uid=ann)")
    (ann,) = records(source).values()
    assert ann.get("telephoneNumber") == "111\n222"
    assert ann.get("givenName") == "Ann"
    assert ann.get("objectClass") == "inetOrgPerson"
    assert ann.get("dn") == f"uid=ann,{SRC}"
    assert source.columns() is None


def test_scope_and_filter_select_the_entries(d: LocalDirectory) -> None:
    one = DirectorySource(d, SRC, scope=Scope.ONE, filterstr="(objectClass=inetOrgPerson)", attributes=["uid"])
    assert {r.get("uid") for r in records(one).values()} == {"ann", "bo"}
    with_mail = DirectorySource(d, SRC, filterstr="(&(objectClass=inetOrgPerson)(mail=*))", attributes=["uid"])
    assert {r.get("uid") for r in records(with_mail).values()} == {"ann", "cy"}
    base = DirectorySource(d, f"uid=bo,{SRC}", scope=Scope.BASE, attributes=["sn"])
    assert [r.get("sn") for r in records(base).values()] == ["Smith"]


def test_a_custom_separator_joins_multiple_values(d: LocalDirectory) -> None:
    source = DirectorySource(d, SRC, filterstr="(uid=ann)", attributes=["telephoneNumber"], separator="; ")
    (ann,) = records(source).values()
    assert ann.get("telephoneNumber") == "111; 222"


def test_only_dn_requested_gives_records_with_the_dn_alone(d: LocalDirectory) -> None:
    source = DirectorySource(d, SRC, filterstr="(objectClass=inetOrgPerson)", attributes=["dn", "DN"])
    got = records(source)
    assert len(got) == 3
    assert all(dict(r.fields) == {"dn": dn} for dn, r in got.items())
    assert source.columns() == ["dn"]


def test_each_spelling_is_a_field_and_repeats_are_dropped(d: LocalDirectory) -> None:
    source = DirectorySource(d, SRC, filterstr="(uid=ann)", attributes=["mail", "MAIL", " mail "])
    assert source.columns() == ["mail", "MAIL", "dn"]
    (ann,) = records(source).values()
    assert dict(ann.fields) == {"mail": "ann@example.org", "MAIL": "ann@example.org", "dn": f"uid=ann,{SRC}"}


def test_a_missing_base_is_a_source_failure_naming_the_source(d: LocalDirectory) -> None:
    source = DirectorySource(d, f"ou=Nowhere,{SUFFIX}", attributes=["uid"], label="job source store 'corp'")
    with pytest.raises(ConnectorError, match=r"^job source store 'corp': .*ou=Nowhere") as caught:
        list(source.read())
    assert not isinstance(caught.value, NotFoundError)
    assert caught.value.field == "source.base_dn" and caught.value.hint
    with pytest.raises(ConnectorError, match="job source store 'corp'"):
        source.test()


def test_a_bad_filter_is_a_config_error_naming_the_source(d: LocalDirectory) -> None:
    source = DirectorySource(d, SRC, filterstr="(uid=ann", attributes=["uid"])
    with pytest.raises(ConfigError, match=f"directory source '{SRC}'"):
        list(source.read())


def test_test_describes_the_directory_and_the_base(d: LocalDirectory) -> None:
    line = DirectorySource(d, SRC).test()
    assert f"base {SRC} readable" in line


def test_an_empty_separator_is_refused(d: LocalDirectory) -> None:
    with pytest.raises(ConfigError, match="separator"):
        DirectorySource(d, SRC, separator="")


def test_closing_the_source_closes_its_directory(tmp_path: Path) -> None:
    directory = LocalDirectory(tmp_path / "x.db", SUFFIX)
    source = DirectorySource(directory, SUFFIX)
    source.close()
    with pytest.raises(ConnectorError, match="closed"):
        list(directory.search(SUFFIX, Scope.BASE))


# ------------------------------------------------------------------ the job's source definition


def job_data(**source: Any) -> dict[str, Any]:
    return {
        "name": "d2d",
        "source": source,
        "destination": {"store": "dir", "container": DST},
        "mappings": [{"attribute": "uid", "from": "uid", "key": True}],
    }


def test_job_source_is_a_data_source_or_a_store() -> None:
    assert JobDefinition.model_validate({**job_data(), "source": "hr"}).source.data_source == "hr"
    spec = JobDefinition.model_validate(job_data(store="dir", base_dn=SRC)).source
    assert (spec.store, spec.base_dn, spec.scope, spec.filter, spec.attributes, spec.multi_value_separator) == (
        "dir", SRC, Scope.SUB, "(objectClass=*)", None, "\n",
    )
    assert spec.label == f"store 'dir' ({SRC})"
    assert JobSource(data_source="hr").label == "data source 'hr'"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({}, "exactly one of data_source"),
        ({"data_source": "hr", "store": "dir", "base_dn": SRC}, "exactly one of data_source"),
        ({"store": "dir"}, "needs base_dn"),
        ({"data_source": "hr", "filter": "(uid=*)"}, "filter only apply to a store source"),
        ({"store": "dir", "base_dn": SRC, "multi_value_separator": ""}, "multi_value_separator"),
        ({"store": "dir", "base_dn": SRC, "attributes": [""]}, "attributes"),
    ],
)
def test_bad_job_sources_are_refused(source: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JobDefinition.model_validate(job_data(**source))


def test_a_store_source_survives_a_dump_and_reload() -> None:
    job = JobDefinition.model_validate(job_data(store="dir", base_dn=SRC, scope="one", attributes=["uid", "mail"]))
    dumped = job.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    assert dumped["source"] == {"store": "dir", "base_dn": SRC, "scope": "one", "attributes": ["uid", "mail"]}
    assert JobDefinition.model_validate(dumped) == job


def test_disable_without_disable_with_is_left_to_the_store_check() -> None:
    job = JobDefinition.model_validate({**job_data(store="dir", base_dn=SRC), "actions": {"on_missing": "disable"}})
    assert job.actions.disable_with is None


# ------------------------------------------------------------------ local to local through the engine


class ListRecorder:
    def __init__(self) -> None:
        self.planned: list[Change] = []
        self.errors_seen: list[ErrorItem] = []

    def changes(self, batch: Sequence[Change]) -> None:
        self.planned.extend(batch)

    def errors(self, items: Sequence[ErrorItem]) -> None:
        self.errors_seen.extend(items)

    def progress(self, counts: Counts) -> None:
        pass


def copy_job(**actions: Any) -> JobDefinition:
    return JobDefinition.model_validate({
        "name": "copy",
        "source": {"store": "dir", "base_dn": SRC, "filter": "(objectClass=inetOrgPerson)"},
        "destination": {"store": "dir", "container": DST},
        "mappings": [
            {"attribute": "uid", "from": "uid", "key": True},
            {"attribute": "cn", "from": "cn"},
            {"attribute": "sn", "from": "sn"},
            {"attribute": "mail", "from": "mail"},
            {"attribute": "telephoneNumber", "from": "telephoneNumber", "multi_value_delimiter": "\n"},
            {"attribute": "description", "from": "dn"},
        ],
        "actions": actions,
    })


def run_copy(job: JobDefinition, directory: LocalDirectory) -> tuple[Counts, ListRecorder]:
    source = DirectorySource(
        directory, SRC, filterstr=job.source.filter, attributes=["uid", "cn", "sn", "mail", "telephoneNumber"]
    )
    recorder = ListRecorder()
    planner = Planner(job, source, directory, RunContext.create(job.name))
    return runner.run(planner, directory, recorder, batch_size=2), recorder


def test_local_subtree_copied_to_another_then_kept_in_step(d: LocalDirectory) -> None:
    job = copy_job(on_missing="delete")
    counts, _ = run_copy(job, d)
    assert (counts.read, counts.created, counts.errors) == (3, 3, 0)
    (ann,) = d.search(DST, Scope.SUB, "(uid=ann)", ["*"])
    assert set(ann.attrs.get_values("telephoneNumber")) == {"111", "222"}  # split back into two values
    assert ann.attrs.get_values("description") == (f"uid=ann,{SRC}",)
    assert ann.dn == f"uid=ann,{DST}"

    again, rec = run_copy(job, d)
    assert (again.unchanged, again.changed, rec.planned) == (3, 0, [])

    apply_ok(d, Change(ChangeOp.UPDATE, f"uid=bo,{SRC}", mods=(Modification(ModOp.REPLACE, "mail", ("bo@example.org",)),)))
    changed, rec = run_copy(job, d)
    assert (changed.updated, changed.unchanged) == (1, 2)
    (change,) = rec.planned
    assert change.op is ChangeOp.UPDATE and change.dn == f"uid=bo,{DST}"
    assert [(m.attribute, m.values, m.before) for m in change.mods] == [("mail", ("bo@example.org",), ())]

    apply_ok(d, Change(ChangeOp.DELETE, f"uid=cy,ou=Sub,{SRC}"))
    gone, rec = run_copy(job, d)
    assert gone.deleted == 1 and [c.op for c in rec.planned] == [ChangeOp.DELETE]
    assert not list(d.search(DST, Scope.SUB, "(uid=cy)"))


def test_disable_without_disable_with_on_a_plain_directory_is_refused(d: LocalDirectory) -> None:
    job = copy_job(on_missing="disable")
    with pytest.raises(ConfigError, match="disable needs disable_with"):
        run_copy(job, d)


def test_source_errors_are_not_record_errors(d: LocalDirectory) -> None:
    source = DirectorySource(d, f"ou=Nowhere,{SUFFIX}", attributes=["uid"])
    items = []
    with pytest.raises(ConnectorError):
        for item in source.read():
            items.append(item)
    assert not any(isinstance(i, RecordError) for i in items)
