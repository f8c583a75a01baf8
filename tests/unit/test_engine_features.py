"""Job features end to end in the engine, on the embedded directory: resolve,
passwords of new objects, changed-only runs (timestamp and hash) and safety limits.

Like tests/unit/test_engine.py: a real CSV file, the real embedded directory,
and recorders and sinks that keep what they are given in lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from idsync.connectors.csv import CsvReader
from idsync.connectors.local import LocalDirectory
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.definitions import ChangedBy, JobDefinition
from idsync.domain.entry import Attrs, Record, Scope
from idsync.engine import runner
from idsync.engine.context import RunContext
from idsync.engine.hashing import job_fingerprint
from idsync.engine.limits import hold_reason
from idsync.engine.passwords import GeneratedPassword, PasswordWriter
from idsync.engine.planner import Planner
from idsync.engine.update_mode import HashState, TimestampRule, UpdateFilter, parse_timestamp
from idsync.errors import RecordError
from tests.jobs import job_definition
from tests.unit.test_engine import ListRecorder
from tests.unit.test_resolve import CountingDirectory

SUFFIX = "dc=example,dc=org"
PEOPLE = f"ou=People,{SUFFIX}"
HEADER = "id,first,last,number,boss,changed"


@pytest.fixture
def directory(tmp_path: Path) -> CountingDirectory:
    d = LocalDirectory(tmp_path / "dir.db", suffix=SUFFIX)
    ou = Attrs({"objectClass": ["top", "organizationalUnit"], "ou": ["People"]})
    assert [o.error for o in d.apply([Change(ChangeOp.CREATE, PEOPLE, attrs=ou)])] == [None]
    return CountingDirectory(d)


def csv(path: Path, rows: list[str]) -> CsvReader:
    path.write_text(HEADER + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return CsvReader(path)


def job(**overrides: Any) -> JobDefinition:
    mappings = overrides.pop("mappings", [
        {"attribute": "uid", "from": "id", "key": True},
        {"attribute": "cn", "join": {"fields": ["first", "last"]}},
        {"attribute": "sn", "from": "last"},
        {"attribute": "employeeNumber", "from": "number"},
    ])
    return job_definition(mappings, PEOPLE, **overrides)


MANAGER = {"attribute": "manager", "from": "boss",
           "resolve": {"base_dn": PEOPLE, "attribute": "employeeNumber", "scope": "one"}}


def run(
    jobdef: JobDefinition,
    source: CsvReader,
    directory: CountingDirectory,
    update: UpdateFilter | None = None,
    steps: Sequence[runner.ApplyStep] = (),
) -> tuple[Any, ListRecorder]:
    recorder = ListRecorder()
    planner = Planner(jobdef, source, directory, RunContext.create(jobdef.name), update)  # type: ignore[arg-type]
    return runner.run(planner, directory, recorder, 3, None, steps), recorder  # type: ignore[arg-type]


def attrs_of(directory: CountingDirectory, uid: str, *names: str) -> Attrs | None:
    hits = list(directory.inner.search(PEOPLE, Scope.ONE, f"(uid={uid})", list(names) or ["*"]))
    return hits[0].attrs if hits else None


ROWS = ["1,Ada,Lovelace,100,,", "2,Alan,Turing,200,100,", "3,Grace,Hopper,300,100,"]


# ---------------------------------------------------------------- resolve


def test_manager_resolves_from_an_employee_number(tmp_path: Path, directory: CountingDirectory) -> None:
    run(job(), csv(tmp_path / "a.csv", ROWS), directory)
    counts, rec = run(job(mappings=[*job().model_dump(by_alias=True)["mappings"], MANAGER]),
                      csv(tmp_path / "b.csv", ROWS), directory)
    assert (counts.updated, counts.errors) == (2, 0), rec.errors_seen
    turing = attrs_of(directory, "2", "manager")
    assert turing is not None and turing.get_values("manager") == (f"uid=1,{PEOPLE}",)
    # Run again: the DN read back compares equal (as a DN), so nothing is written.
    again, rec2 = run(job(mappings=[*job().model_dump(by_alias=True)["mappings"], MANAGER]),
                      csv(tmp_path / "c.csv", ROWS), directory)
    assert again.changed == 0 and rec2.planned == []


def test_an_unknown_manager_fails_only_its_record(tmp_path: Path, directory: CountingDirectory) -> None:
    with_manager = job(
        mappings=[*job().model_dump(by_alias=True)["mappings"], MANAGER], actions={"on_missing": "delete"}
    )
    run(job(), csv(tmp_path / "a.csv", ROWS), directory)
    rows = ["1,Ada,Lovelace,100,,", "2,Alan,Turing,200,999,", "3,Grace,Hopper,300,100,"]
    counts, rec = run(with_manager, csv(tmp_path / "b.csv", rows), directory)
    assert (counts.updated, counts.errors, counts.deleted) == (1, 1, 0)
    (error,) = rec.errors_seen
    assert "employeeNumber '999' matches no object" in error.message
    assert (error.key, error.attribute, error.line) == ("2", "manager", 3)
    assert attrs_of(directory, "2", "manager") is not None  # the failed record still claims its object
    assert attrs_of(directory, "2", "manager").get_values("manager") == ()  # type: ignore[union-attr]


def test_report_mode_writes_the_record_without_the_value(tmp_path: Path, directory: CountingDirectory) -> None:
    report = {**MANAGER, "resolve": {**MANAGER["resolve"], "unresolved": "report"}}  # type: ignore[dict-item]
    jd = job(mappings=[*job().model_dump(by_alias=True)["mappings"], report])
    # A manager created in the same run resolves on the next run (indexes are read before writing).
    counts, rec = run(jd, csv(tmp_path / "a.csv", ROWS), directory)
    assert counts.created == 3 and counts.errors == 2
    assert all("left out" in e.message for e in rec.errors_seen)
    counts, rec = run(jd, csv(tmp_path / "b.csv", ROWS), directory)
    assert (counts.updated, counts.errors) == (2, 0)
    assert attrs_of(directory, "3", "manager").get_values("manager") == (f"uid=1,{PEOPLE}",)  # type: ignore[union-attr]


def test_resolve_reads_its_index_once_per_run(tmp_path: Path, directory: CountingDirectory) -> None:
    rows = [f"{i},F{i},L{i},{1000 + i},100," for i in range(4, 60)]
    run(job(), csv(tmp_path / "a.csv", ["1,Ada,Lovelace,100,,", *rows]), directory)
    directory.searches.clear()
    jd = job(mappings=[*job().model_dump(by_alias=True)["mappings"], MANAGER])
    counts, _ = run(jd, csv(tmp_path / "b.csv", ["1,Ada,Lovelace,100,,", *rows]), directory)
    assert counts.updated == 56
    # One search for the job's scope, one for the manager index: never one per record.
    assert len(directory.searches) == 2


# ---------------------------------------------------------------- passwords


class Delivered:
    def __init__(self) -> None:
        self.items: list[GeneratedPassword] = []

    def __call__(self, items: Sequence[GeneratedPassword]) -> None:
        self.items.extend(items)


def test_new_objects_get_a_generated_password_that_no_plan_holds(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(passwords={"generate": {"length": 20}, "recipients": ["it@example.org"]})
    assert jd.passwords is not None
    delivered = Delivered()
    writer = PasswordWriter(jd.passwords, delivered)
    counts, rec = run(jd, csv(tmp_path / "a.csv", ROWS), directory, steps=[writer])
    assert counts.created == 3
    assert sorted(p.key for p in delivered.items) == ["1", "2", "3"]
    for p in delivered.items:
        stored = attrs_of(directory, p.key, "userPassword")
        assert stored is not None and stored.get_values("userPassword") == (p.password,)
        assert len(p.password) == 20
    # The recorded plan has the creates, without any password.
    assert len(rec.planned) == 3
    assert all(c.attrs is not None and "userPassword" not in c.attrs for c in rec.planned)
    assert not any(p.password in repr(rec.planned) for p in delivered.items)


def test_passwords_are_written_on_create_only(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(passwords={"fixed": "Start-123!"})
    writer = PasswordWriter(jd.passwords, Delivered(), fixed="Start-123!")  # type: ignore[arg-type]
    run(jd, csv(tmp_path / "a.csv", ROWS), directory, steps=[writer])
    assert attrs_of(directory, "1", "userPassword").get_values("userPassword") == ("Start-123!",)  # type: ignore[union-attr]
    # Someone changes Ada's password; an update run leaves it alone.
    dn = f"uid=1,{PEOPLE}"
    from idsync.domain.changes import Modification, ModOp

    edit = Change(ChangeOp.UPDATE, dn, mods=(Modification(ModOp.REPLACE, "userPassword", ("Own-Choice-9",)),))
    assert [o.error for o in directory.apply([edit])] == [None]
    rows = ["1,Ada,King,100,,", *ROWS[1:]]
    writer2 = PasswordWriter(jd.passwords, Delivered(), fixed="Start-123!")  # type: ignore[arg-type]
    counts, _ = run(jd, csv(tmp_path / "b.csv", rows), directory, steps=[writer2])
    assert counts.updated == 1 and writer2.written == 0
    assert attrs_of(directory, "1", "userPassword").get_values("userPassword") == ("Own-Choice-9",)  # type: ignore[union-attr]


def test_a_failed_create_keeps_no_password(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(passwords={"generate": {}})
    delivered = Delivered()
    # Row 2 has no surname: inetOrgPerson requires sn, so the directory refuses it.
    rows = ["1,Ada,Lovelace,100,,", "2,Alan,,200,,"]
    counts, rec = run(jd, csv(tmp_path / "a.csv", rows), directory, steps=[PasswordWriter(jd.passwords, delivered)])  # type: ignore[arg-type]
    assert counts.created == 1 and counts.errors == 1
    assert [p.key for p in delivered.items] == ["1"]
    assert rec.errors_seen[0].key == "2"


# ---------------------------------------------------------------- changed-only by hash


class Hashes:
    """The job's stored hashes, kept in a dict as the database would keep them."""

    def __init__(self) -> None:
        self.stored: dict[str, str] = {}
        self.saves = 0

    def __call__(self, items: Sequence[tuple[str, str]]) -> None:
        self.saves += 1
        self.stored.update(items)

    def state(self, jd: JobDefinition) -> HashState:
        return HashState(dict(self.stored), job_fingerprint(jd), self, batch_size=2)


def hashed(jd: JobDefinition, hashes: Hashes) -> tuple[UpdateFilter, list[runner.ApplyStep]]:
    state = hashes.state(jd)
    return UpdateFilter(hashes=state), [state]


def test_an_unchanged_source_reads_nothing_from_the_directory(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(update_mode="changed", changed_by={"hash": True})
    hashes = Hashes()
    rows = [f"{i},F{i},L{i},{i},," for i in range(40)]
    counts, _ = run(jd, csv(tmp_path / "a.csv", rows), directory, *hashed(jd, hashes))
    assert counts.created == 40 and len(hashes.stored) == 40
    directory.searches.clear()

    counts, rec = run(jd, csv(tmp_path / "b.csv", rows), directory, *hashed(jd, hashes))
    assert (counts.read, counts.unchanged, counts.changed) == (40, 40, 0)
    assert directory.searches == [] and rec.planned == []

    # One record changes: the scope is read once, one object updated.
    rows[7] = "7,F7,Changed,7,,"
    counts, rec = run(jd, csv(tmp_path / "c.csv", rows), directory, *hashed(jd, hashes))
    assert (counts.updated, counts.unchanged) == (1, 39)
    assert len(directory.searches) == 1
    assert attrs_of(directory, "7", "sn").get_values("sn") == ("Changed",)  # type: ignore[union-attr]


def test_a_failed_record_keeps_its_old_hash(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(update_mode="changed", changed_by={"hash": True})
    hashes = Hashes()
    run(jd, csv(tmp_path / "a.csv", ROWS), directory, *hashed(jd, hashes))
    before = dict(hashes.stored)
    # Alan's new surname is empty: the directory refuses the update (sn is required).
    rows = ["1,Ada,King,100,,", "2,Alan,,200,,", ROWS[2]]
    counts, _ = run(jd, csv(tmp_path / "b.csv", rows), directory, *hashed(jd, hashes))
    assert counts.updated == 1 and counts.errors == 1
    assert hashes.stored["2"] == before["2"]  # failed: the record is looked at again next run
    assert hashes.stored["1"] != before["1"]  # written: its new hash is kept
    counts, _ = run(jd, csv(tmp_path / "c.csv", rows), directory, *hashed(jd, hashes))
    assert (counts.errors, counts.unchanged) == (1, 2)


def test_edited_job_compares_every_record_again(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(update_mode="changed", changed_by={"hash": True})
    hashes = Hashes()
    run(jd, csv(tmp_path / "a.csv", ROWS), directory, *hashed(jd, hashes))
    edited = job(update_mode="changed", changed_by={"hash": True},
                 mappings=[*jd.model_dump(by_alias=True)["mappings"], {"attribute": "title", "value": "Staff"}])
    counts, _ = run(edited, csv(tmp_path / "b.csv", ROWS), directory, *hashed(edited, hashes))
    assert counts.updated == 3


def test_objects_removed_meanwhile_are_recreated_when_the_scope_is_read(
    tmp_path: Path, directory: CountingDirectory
) -> None:
    jd = job(update_mode="changed", changed_by={"hash": True}, actions={"on_missing": "delete"})
    hashes = Hashes()
    run(jd, csv(tmp_path / "a.csv", ROWS), directory, *hashed(jd, hashes))
    assert [o.error for o in directory.apply([Change(ChangeOp.DELETE, f"uid=2,{PEOPLE}")])] == [None]
    counts, _ = run(jd, csv(tmp_path / "b.csv", ROWS), directory, *hashed(jd, hashes))
    assert (counts.created, counts.unchanged, counts.deleted) == (1, 2, 0)
    assert attrs_of(directory, "2") is not None


def test_skipped_records_still_claim_their_objects(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(update_mode="changed", changed_by={"hash": True}, actions={"on_missing": "delete"})
    hashes = Hashes()
    run(jd, csv(tmp_path / "a.csv", ROWS), directory, *hashed(jd, hashes))
    counts, _ = run(jd, csv(tmp_path / "b.csv", ROWS[:2]), directory, *hashed(jd, hashes))
    assert (counts.unchanged, counts.deleted) == (2, 1)
    assert attrs_of(directory, "1") is not None and attrs_of(directory, "3") is None


def test_a_duplicate_of_a_skipped_record_is_an_error(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(update_mode="changed", changed_by={"hash": True})
    hashes = Hashes()
    run(jd, csv(tmp_path / "a.csv", ROWS), directory, *hashed(jd, hashes))
    counts, rec = run(jd, csv(tmp_path / "b.csv", [*ROWS, "1,Ada,Other,100,,"]), directory, *hashed(jd, hashes))
    assert counts.errors == 1 and "duplicate key '1'" in rec.errors_seen[0].message
    assert attrs_of(directory, "1", "sn").get_values("sn") == ("Lovelace",)  # type: ignore[union-attr]


def test_a_preview_keeps_no_hashes(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(update_mode="changed", changed_by={"hash": True})
    run(jd, csv(tmp_path / "a.csv", ROWS), directory)
    state = HashState({}, job_fingerprint(jd), sink=None)
    planner = Planner(jd, csv(tmp_path / "b.csv", ROWS), directory, RunContext.create("people"), UpdateFilter(hashes=state))  # type: ignore[arg-type]
    counts = runner.preview(planner, ListRecorder())
    state.flush()
    assert counts.unchanged == 3 and state.saved == 0


# ---------------------------------------------------------------- changed-only by timestamp


def stamped(since: datetime | None, **spec: Any) -> UpdateFilter:
    return UpdateFilter(timestamps=TimestampRule(ChangedBy(timestamp_field="changed", **spec), since))


def test_records_not_changed_since_the_last_run_are_skipped(tmp_path: Path, directory: CountingDirectory) -> None:
    jd = job(update_mode="changed", changed_by={"timestamp_field": "changed"}, actions={"on_missing": "delete"})
    rows = ["1,Ada,Lovelace,100,,2024-01-01T08:00:00Z", "2,Alan,Turing,200,,2024-01-01T08:00:00Z"]
    counts, _ = run(jd, csv(tmp_path / "a.csv", rows), directory, stamped(None))
    assert counts.created == 2
    since = datetime(2024, 3, 1, tzinfo=UTC)
    rows = [
        "1,Ada,King,100,,2024-01-01T08:00:00Z",  # older than the last run: not even mapped
        "2,Alan,Mathison,200,,2024-03-01T00:00:01Z",  # changed after it
        "3,Grace,Hopper,300,,",  # no timestamp: looked at
    ]
    counts, _ = run(jd, csv(tmp_path / "b.csv", rows), directory, stamped(since))
    assert (counts.unchanged, counts.updated, counts.created, counts.deleted) == (1, 1, 1, 0)
    assert attrs_of(directory, "1", "sn").get_values("sn") == ("Lovelace",)  # type: ignore[union-attr]
    assert attrs_of(directory, "2", "sn").get_values("sn") == ("Mathison",)  # type: ignore[union-attr]


def test_an_unreadable_timestamp_fails_the_record_and_protects_its_object(
    tmp_path: Path, directory: CountingDirectory
) -> None:
    jd = job(update_mode="changed", changed_by={"timestamp_field": "changed"}, actions={"on_missing": "delete"})
    run(jd, csv(tmp_path / "a.csv", ROWS), directory, stamped(None))
    rows = ["1,Ada,Lovelace,100,,yesterday", ROWS[1], ROWS[2]]
    counts, rec = run(jd, csv(tmp_path / "b.csv", rows), directory, stamped(datetime(2024, 1, 1, tzinfo=UTC)))
    assert counts.errors == 1 and counts.deleted == 0
    assert "timestamp 'yesterday' in field 'changed' cannot be read" in rec.errors_seen[0].message
    assert rec.errors_seen[0].line == 2


def test_timestamps_in_other_formats_and_zones() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_timestamp("2024-05-01T12:00:00+02:00", None, berlin) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_timestamp("2024-05-01 12:00", None, berlin) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_timestamp("2024-05-01", None, ZoneInfo("UTC")) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_timestamp("01.05.2024 12:00", "%d.%m.%Y %H:%M", berlin) == datetime(2024, 5, 1, 10, tzinfo=UTC)
    rule = TimestampRule(ChangedBy(timestamp_field="t", timestamp_format="%d.%m.%Y"), datetime(2024, 5, 1, tzinfo=UTC))
    assert rule.unchanged(Record({"t": "30.04.2024"}))
    assert not rule.unchanged(Record({"t": "02.05.2024"}))
    assert not rule.unchanged(Record({"t": " "}))
    with pytest.raises(RecordError, match=r"format '%d\.%m\.%Y'"):
        rule.unchanged(Record({"t": "2024-05-01"}, line=9))
    with pytest.raises(RecordError, match="source has no field 't'"):
        rule.unchanged(Record({"x": "1"}))
    # Exactly at the watermark counts as not changed after it.
    assert TimestampRule(ChangedBy(timestamp_field="t"), datetime(2024, 5, 1, tzinfo=UTC)).unchanged(
        Record({"t": "2024-05-01T00:00:00Z"})
    )
    assert not TimestampRule(ChangedBy(timestamp_field="t"), None).unchanged(Record({"t": "2000-01-01"}))


def test_changed_by_is_validated() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ChangedBy()
    with pytest.raises(ValueError, match="exactly one"):
        ChangedBy(timestamp_field="t", hash=True)
    with pytest.raises(ValueError, match="unknown time zone"):
        ChangedBy(timestamp_field="t", timestamp_zone="Mars/Olympus")
    with pytest.raises(ValueError, match="apply to timestamp_field"):
        ChangedBy(hash=True, timestamp_format="%Y")
    with pytest.raises(ValueError, match="needs changed_by"):
        job(update_mode="changed")


# ---------------------------------------------------------------- safety limits


def run_limited(jd: JobDefinition, source: CsvReader, directory: CountingDirectory) -> tuple[Any, str | None, ListRecorder]:
    recorder = ListRecorder()
    planner = Planner(jd, source, directory, RunContext.create(jd.name))  # type: ignore[arg-type]
    counts, reason = runner.run_checked(
        planner, directory, recorder, lambda: list(recorder.planned),  # type: ignore[arg-type]
        lambda p: hold_reason(jd.limits, p.plan_size()), 3,
    )
    return counts, reason, recorder


def test_a_run_over_a_limit_writes_nothing(tmp_path: Path, directory: CountingDirectory) -> None:
    run(job(), csv(tmp_path / "a.csv", [f"{i},F{i},L{i},{i},," for i in range(10)]), directory)
    before = {e.dn: e.attrs for e in directory.inner.search(PEOPLE, Scope.ONE, "(uid=*)", ["*", "modifyTimestamp"])}
    jd = job(actions={"on_missing": "delete"}, limits={"max_deletes": 3})
    counts, reason, rec = run_limited(jd, csv(tmp_path / "b.csv", ["0,F0,L0,0,,"]), directory)
    assert reason == "held: 9 deletes exceed max_deletes 3"
    assert counts.deleted == 0 and counts.read == 1 and counts.unchanged == 1
    assert len(rec.planned) == 9  # the plan is complete, ready to be released
    after = {e.dn: e.attrs for e in directory.inner.search(PEOPLE, Scope.ONE, "(uid=*)", ["*", "modifyTimestamp"])}
    assert after == before


def test_a_run_within_its_limits_applies_its_plan(tmp_path: Path, directory: CountingDirectory) -> None:
    run(job(), csv(tmp_path / "a.csv", [f"{i},F{i},L{i},{i},," for i in range(10)]), directory)
    jd = job(actions={"on_missing": "disable", "disable_with": {"attribute": "description", "value": "gone"}},
             limits={"max_deletes": 3, "max_creates": 1, "max_changed_percent": 40})
    rows = [f"{i},F{i},L{i},{i},," for i in range(7)] + ["42,New,Person,42,,"]
    rows[0] = "0,F0,Renamed,0,,"
    counts, reason, _ = run_limited(jd, csv(tmp_path / "b.csv", rows), directory)
    assert reason is None
    assert (counts.created, counts.updated, counts.disabled, counts.unchanged) == (1, 1, 3, 6)
    assert attrs_of(directory, "9", "description").get_values("description") == ("gone",)  # type: ignore[union-attr]
    assert attrs_of(directory, "42") is not None


def test_the_changed_share_counts_updates_and_removals(tmp_path: Path, directory: CountingDirectory) -> None:
    run(job(), csv(tmp_path / "a.csv", [f"{i},F{i},L{i},{i},," for i in range(10)]), directory)
    jd = job(actions={"on_missing": "delete"}, limits={"max_changed_percent": 20})
    rows = [f"{i},F{i},L{i}x,{i},," for i in range(2)] + [f"{i},F{i},L{i},{i},," for i in range(2, 9)]
    counts, reason, _ = run_limited(jd, csv(tmp_path / "b.csv", rows), directory)
    assert reason == "held: 3 of 10 objects in scope change (30.0%), over max_changed_percent 20"
    assert counts.changed == 0


def test_planner_reports_the_plan_size(tmp_path: Path, directory: CountingDirectory) -> None:
    run(job(), csv(tmp_path / "a.csv", [f"{i},F{i},L{i},{i},," for i in range(5)]), directory)
    jd = job(actions={"on_missing": "move", "move_to": SUFFIX})
    planner = Planner(jd, csv(tmp_path / "b.csv", ["0,F0,X,0,,", "7,N,N,7,,"]), directory, RunContext.create("p"))  # type: ignore[arg-type]
    runner.preview(planner, ListRecorder())
    size = planner.plan_size()
    assert (size.creates, size.removals, size.changed, size.scope) == (1, 4, 5, 5)


def test_watermark_helpers_use_aware_times() -> None:
    rule = TimestampRule(ChangedBy(timestamp_field="t"), datetime.now(UTC) - timedelta(days=1))
    assert not rule.unchanged(Record({"t": datetime.now(UTC).isoformat()}))
