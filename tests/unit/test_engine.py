"""The sync engine end to end on the embedded directory: plan, run, apply a stored plan.

These use real components (a CSV file, the embedded directory) and a recorder
that keeps what it is given in lists, as the database recorder would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from idsync.connectors.csv import CsvReader
from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import Change, ChangeOp, ModOp
from idsync.domain.definitions import JobDefinition
from idsync.domain.entry import Attrs, Scope
from idsync.domain.results import Counts, ErrorItem
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.planner import Planner
from idsync.errors import ConnectorError, NotFoundError, RunAborted, TransientError
from tests.jobs import job_definition

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"


class ListRecorder:
    def __init__(self) -> None:
        self.planned: list[Change] = []
        self.errors_seen: list[ErrorItem] = []
        self.progress_calls = 0

    def changes(self, batch: Sequence[Change]) -> None:
        self.planned.extend(batch)

    def errors(self, items: Sequence[ErrorItem]) -> None:
        self.errors_seen.extend(items)

    def progress(self, counts: Counts) -> None:
        self.progress_calls += 1


@pytest.fixture
def directory(tmp_path: Path) -> LocalDirectory:
    d = LocalDirectory(tmp_path / "dir.db", suffix=SUFFIX)
    ou = Attrs({"objectClass": ["top", "organizationalUnit"], "ou": ["People"]})
    gone = Attrs({"objectClass": ["top", "organizationalUnit"], "ou": ["Gone"]})
    outcomes = list(d.apply([Change(ChangeOp.CREATE, PEOPLE, attrs=ou), Change(ChangeOp.CREATE, f"ou=Gone,{SUFFIX}", attrs=gone)]))
    assert all(o.error is None for o in outcomes)
    return d


def write_csv(path: Path, rows: list[str]) -> CsvReader:
    path.write_text("id,first,last,mail,phones\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return CsvReader(path)


def job(**overrides: Any) -> JobDefinition:
    mappings = overrides.pop("mappings", [
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "givenName", "from": "first"},
        {"attribute": "sn", "from": "last"},
        {"attribute": "cn", "join": {"fields": ["first", "last"]}},
        {"attribute": "mail", "from": "mail", "transforms": ["lower"]},
        {"attribute": "telephoneNumber", "from": "phones", "multi_value_delimiter": ";"},
        {"attribute": "description", "value": "made by %JOBNAME%", "new_only": True},
    ])
    return job_definition(mappings, PEOPLE, **overrides)


def run_once(jobdef: JobDefinition, source: CsvReader, directory: LocalDirectory) -> tuple[Counts, ListRecorder]:
    recorder = ListRecorder()
    planner = Planner(jobdef, source, directory, RunContext.create(jobdef.name))
    return runner.run(planner, directory, recorder, batch_size=2), recorder


def entry(directory: LocalDirectory, uid: str) -> Attrs | None:
    hits = list(directory.search(SUFFIX, Scope.SUB, f"(uid={uid})", ["*", "modifyTimestamp"]))
    assert len(hits) <= 1
    return hits[0].attrs if hits else None


BASE_ROWS = ["1,Ada,Lovelace,ADA@x.org,111;222", "2,Alan,Turing,alan@x.org,333"]


def test_first_run_creates_and_second_run_changes_nothing(tmp_path: Path, directory: LocalDirectory) -> None:
    source = write_csv(tmp_path / "hr.csv", BASE_ROWS)
    counts, _rec = run_once(job(), source, directory)
    assert (counts.read, counts.created, counts.errors) == (2, 2, 0)
    ada = entry(directory, "1")
    assert ada is not None
    assert ada.get_values("mail") == ("ada@x.org",)
    assert set(ada.get_values("telephoneNumber")) == {"111", "222"}
    assert ada.get_values("cn") == ("Ada Lovelace",)
    assert ada.get_values("description") == ("made by people",)
    stamp = ada.get_values("modifyTimestamp")

    again, rec2 = run_once(job(), source, directory)
    assert again.changed == 0 and again.unchanged == 2
    assert rec2.planned == []
    assert entry(directory, "1").get_values("modifyTimestamp") == stamp  # type: ignore[union-attr]


def test_update_writes_only_the_attributes_that_differ(tmp_path: Path, directory: LocalDirectory) -> None:
    run_once(job(), write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    rows = ["1,Ada,King,ada@x.org,222;111", "2,Alan,Turing,alan@x.org,333"]
    counts, rec = run_once(job(), write_csv(tmp_path / "b.csv", rows), directory)
    assert counts.updated == 1 and counts.unchanged == 1
    (change,) = rec.planned
    assert change.op is ChangeOp.UPDATE
    assert {m.attribute for m in change.mods} == {"sn", "cn"}
    sn = next(m for m in change.mods if m.attribute == "sn")
    assert sn.before == ("Lovelace",) and sn.values == ("King",)
    assert entry(directory, "1").get_values("sn") == ("King",)  # type: ignore[union-attr]


def test_new_only_attribute_is_not_overwritten(tmp_path: Path, directory: LocalDirectory) -> None:
    run_once(job(), write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    renamed = job(name="other-name")
    counts, _ = run_once(renamed, write_csv(tmp_path / "b.csv", BASE_ROWS), directory)
    assert counts.changed == 0
    assert entry(directory, "1").get_values("description") == ("made by people",)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("action", "extra", "expect"),
    [
        ("delete", {}, "deleted"),
        ("disable", {"disable_with": {"attribute": "description", "value": "disabled"}}, "disabled"),
        ("move", {"move_to": f"ou=Gone,{SUFFIX}"}, "moved"),
    ],
)
def test_objects_missing_from_the_source(
    tmp_path: Path, directory: LocalDirectory, action: str, extra: dict[str, Any], expect: str
) -> None:
    run_once(job(), write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    jd = job(actions={"on_missing": action, **extra})
    counts, _ = run_once(jd, write_csv(tmp_path / "b.csv", BASE_ROWS[:1]), directory)
    assert getattr(counts, expect) == 1
    turing = list(directory.search(SUFFIX, Scope.SUB, "(uid=2)", ["description"]))
    if action == "delete":
        assert turing == []
    elif action == "disable":
        assert turing[0].attrs.get_values("description") == ("disabled",)
    else:
        assert turing[0].dn.lower().endswith(f"ou=gone,{SUFFIX}")
    # Running again changes nothing more.
    counts, _ = run_once(jd, write_csv(tmp_path / "c.csv", BASE_ROWS[:1]), directory)
    assert counts.changed == 0


def test_duplicate_source_key_is_a_record_error(tmp_path: Path, directory: LocalDirectory) -> None:
    rows = [*BASE_ROWS, "1,Other,Person,o@x.org,"]
    counts, rec = run_once(job(), write_csv(tmp_path / "a.csv", rows), directory)
    assert counts.created == 2 and counts.errors == 1
    assert "duplicate key '1'" in rec.errors_seen[0].message
    assert rec.errors_seen[0].line == 4
    assert entry(directory, "1").get_values("sn") == ("Lovelace",)  # type: ignore[union-attr]


def test_duplicate_keys_of_several_fields_are_caught_part_by_part(tmp_path: Path, directory: LocalDirectory) -> None:
    """With two key fields, a record is a duplicate only when both parts repeat
    (compared as the key is normalised: case and spaces aside)."""
    two_keys = job(mappings=[
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "sn", "from": "last", "key": True},
        {"attribute": "cn", "from": "first"},
    ])
    rows = ["1,Ada,Lovelace,,", "1,Ada,Byron,,", "2,Ada,Lovelace,,", "1,Ann,LOVELACE ,,"]
    counts, rec = run_once(two_keys, write_csv(tmp_path / "k.csv", rows), directory)
    assert (counts.created, counts.errors) == (2, 2)  # uid=1 twice in one container: the second create fails
    messages = [e.message for e in rec.errors_seen]
    assert any("duplicate key '1|LOVELACE '" in m and "(first at line 2)" in m for m in messages), messages


def test_key_matching_two_objects_is_never_guessed(tmp_path: Path, directory: LocalDirectory) -> None:
    run_once(job(), write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    twin = Attrs({"objectClass": ["inetOrgPerson"], "uid": ["1"], "cn": ["Twin"], "sn": ["Twin"]})
    assert [o.error for o in directory.apply([Change(ChangeOp.CREATE, f"cn=Twin,{PEOPLE}", attrs=twin)])] == [None]
    rows = ["1,Ada,Changed,ada@x.org,111;222", "2,Alan,Turing,alan@x.org,333"]
    counts, rec = run_once(job(), write_csv(tmp_path / "b.csv", rows), directory)
    assert counts.errors == 1 and counts.updated == 0
    assert "matches 2 objects" in rec.errors_seen[0].message
    assert entry_count(directory, "(sn=Changed)") == 0


def entry_count(directory: LocalDirectory, flt: str) -> int:
    return len(list(directory.search(SUFFIX, Scope.SUB, flt, ["uid"])))


def test_a_bad_record_never_deletes_its_object(tmp_path: Path, directory: LocalDirectory) -> None:
    run_once(job(), write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    jd = job(
        actions={"on_missing": "delete"},
        mappings=[
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "sn", "from": "last", "transforms": [{"lookup": {"table": {"Lovelace": "L"}}}]},
        ],
    )
    counts, _rec = run_once(jd, write_csv(tmp_path / "b.csv", BASE_ROWS), directory)
    assert counts.errors == 1 and counts.deleted == 0
    assert entry(directory, "2") is not None


def test_unreadable_rows_stop_deletes_for_the_run(tmp_path: Path, directory: LocalDirectory) -> None:
    run_once(job(), write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    jd = job(actions={"on_missing": "delete"})
    counts, rec = run_once(jd, write_csv(tmp_path / "b.csv", [BASE_ROWS[0], "2,too,many,fields,x,y"]), directory)
    assert counts.deleted == 0
    assert any("left alone" in e.message for e in rec.errors_seen)
    [held_back] = [e.message for e in rec.errors_seen if "left alone" in e.message]
    assert held_back.startswith(
        "1 source record could not be read or keyed, so the object missing from the source was left alone"
    ), held_back
    assert "the 1 objects" not in held_back and "fix that record" in held_back
    assert entry(directory, "2") is not None


def test_empty_source_never_deletes_everything(tmp_path: Path, directory: LocalDirectory) -> None:
    run_once(job(), write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    with pytest.raises(RunAborted, match="allow_empty_source"):
        run_once(job(actions={"on_missing": "delete"}), write_csv(tmp_path / "b.csv", []), directory)
    assert entry_count(directory, "(uid=*)") == 2


def test_stored_plan_skips_objects_changed_since(tmp_path: Path, directory: LocalDirectory) -> None:
    run_once(job(), write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    rows = ["1,Ada,King,ada@x.org,111;222", "2,Alan,Mathison,alan@x.org,333"]
    source = write_csv(tmp_path / "b.csv", rows)
    rec = ListRecorder()
    planned = runner.preview(Planner(job(), source, directory, RunContext.create("people")), rec)
    assert planned.updated == 2
    # Someone edits Ada's surname in the directory after the preview.
    ada_dn = next(iter(directory.search(SUFFIX, Scope.SUB, "(uid=1)", ["uid"]))).dn
    edit = Change(ChangeOp.UPDATE, ada_dn, mods=(_replace("sn", "Byron"),))
    assert [o.error for o in directory.apply([edit])] == [None]

    planner = Planner(job(), source, directory, RunContext.create("people"))
    preconditions = runner.job_preconditions(job(), directory, runner.read_current(planner))
    out = ListRecorder()
    counts = runner.apply_plan(rec.planned, directory, preconditions, out)
    assert counts.updated == 1 and counts.conflicts == 1
    assert "changed since the plan was computed" in out.errors_seen[0].message
    assert entry(directory, "1").get_values("sn") == ("Byron",)  # type: ignore[union-attr]
    assert entry(directory, "2").get_values("sn") == ("Mathison",)  # type: ignore[union-attr]


def _replace(attribute: str, value: str) -> Any:
    from idsync.domain.changes import Modification

    return Modification(ModOp.REPLACE, attribute, (value,))


def test_renaming_the_naming_attribute_moves_the_object(tmp_path: Path, directory: LocalDirectory) -> None:
    jd = job(destination={"store": "dir", "container": PEOPLE, "rdn_attribute": "cn"})
    run_once(jd, write_csv(tmp_path / "a.csv", BASE_ROWS), directory)
    rows = ["1,Ada,King,ada@x.org,111;222", BASE_ROWS[1]]
    counts, _rec = run_once(jd, write_csv(tmp_path / "b.csv", rows), directory)
    assert counts.moved == 1
    hits = list(directory.search(SUFFIX, Scope.SUB, "(uid=1)", ["cn"]))
    assert hits[0].dn.lower().startswith("cn=ada king,")


def test_key_and_dn_values_with_special_characters(tmp_path: Path, directory: LocalDirectory) -> None:
    jd = job(destination={"store": "dir", "container": PEOPLE, "rdn_attribute": "cn"})
    rows = ['"*)(uid=*",Ann,"O\'Neil, Jr + <x>; \\\\",a@x.org,', '" lead",Ümit,"trail ",u@x.org,']
    counts, rec = run_once(jd, write_csv(tmp_path / "a.csv", rows), directory)
    assert counts.created == 2, rec.errors_seen
    again, _ = run_once(jd, write_csv(tmp_path / "b.csv", rows), directory)
    assert again.changed == 0 and again.unchanged == 2


def test_group_membership_is_written_as_value_adds_and_deletes(tmp_path: Path, directory: LocalDirectory) -> None:
    run_once(job(), write_csv(tmp_path / "people.csv", [*BASE_ROWS, "3,Grace,Hopper,g@x.org,"]), directory)
    groups = tmp_path / "groups.csv"
    gjob = JobDefinition.model_validate({
        "name": "groups",
        "source": "groups",
        "destination": {"store": "dir", "container": PEOPLE, "object_type": "group"},
        "mappings": [
            {"attribute": "cn", "from": "name", "key": True},
            {"attribute": "member", "from": "members", "multi_value_delimiter": ";",
             "members": {"base_dn": PEOPLE, "attribute": "uid"}},
        ],
    })
    groups.write_text("name,members\nstaff,1;2;404\n", encoding="utf-8")
    counts, rec = run_once(gjob, CsvReader(groups), directory)
    assert counts.created == 1
    assert any("'404' matches no object" in e.message for e in rec.errors_seen)
    groups.write_text("name,members\nstaff,1;3\n", encoding="utf-8")
    counts, rec = run_once(gjob, CsvReader(groups), directory)
    (change,) = rec.planned
    ops = {(m.op, tuple(v.split(",")[0] for v in m.values)) for m in change.mods}
    assert ops == {(ModOp.ADD, ("uid=3",)), (ModOp.DELETE, ("uid=2",))}
    members = next(iter(directory.search(PEOPLE, Scope.SUB, "(cn=staff)", ["member"]))).attrs.get_values("member")
    assert sorted(m.split(",")[0] for m in members) == ["uid=1", "uid=3"]


class SourceLostMidway:
    """A CSV source whose file server goes away after *n* records."""

    def __init__(self, reader: CsvReader, n: int) -> None:
        self.reader, self.n = reader, n

    def read(self) -> Any:
        for i, item in enumerate(self.reader.read()):
            if i == self.n:
                raise TransientError("connection to the file server lost")
            yield item

    def test(self) -> str:
        return "lost midway"

    def close(self) -> None:
        self.reader.close()


class ProgressRecorder(ListRecorder):
    def __init__(self) -> None:
        super().__init__()
        self.last = Counts()

    def progress(self, counts: Counts) -> None:
        self.last = counts


def test_a_run_that_fails_midway_records_what_it_did(tmp_path: Path, directory: LocalDirectory) -> None:
    rows = [f"{i},F{i},L{i},m{i}@x.org," for i in range(10)]
    source = SourceLostMidway(write_csv(tmp_path / "a.csv", rows), 6)
    recorder = ProgressRecorder()
    planner = Planner(job(), source, directory, RunContext.create("people"))  # type: ignore[arg-type]
    with pytest.raises(TransientError):
        runner.run(planner, directory, recorder, batch_size=4)
    assert recorder.last.read == 6 and len(recorder.planned) == 6
    # The embedded directory applies in transactions: the unfinished batch is not
    # applied, and the counts say exactly what is in the directory.
    assert recorder.last.created == entry_count(directory, "(uid=*)")


def test_a_destination_base_that_does_not_exist_fails_the_run_as_a_connector_error(
    tmp_path: Path, directory: LocalDirectory
) -> None:
    """The job exists: its missing container is a failure of the run, not a
    "not found" a front end would answer for the job itself."""
    source = write_csv(tmp_path / "a.csv", BASE_ROWS)
    missing = job_definition([{"attribute": "uid", "from": "id", "key": True}], f"ou=Nowhere,{SUFFIX}")
    with pytest.raises(ConnectorError, match=r"ou=Nowhere.* does not exist") as caught:
        run_once(missing, source, directory)
    assert not isinstance(caught.value, NotFoundError)
    assert caught.value.field == "destination.container" and caught.value.hint
    assert isinstance(caught.value.__cause__, NotFoundError)
