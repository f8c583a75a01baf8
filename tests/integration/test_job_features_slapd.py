"""Job features against a real slapd, through the service layer the CLI uses:
resolve, passwords of new users, changed-only runs, safety limits, and group
membership at scale."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap
import pytest

from benchmarks.proxy import CountingProxy
from idsync.domain.results import RunState
from idsync.errors import ConfigError, PermissionDeniedError
from idsync.services import definitions, history, job_features, jobs
from idsync.services.workspace import Workspace
from idsync.store.tables import jobs as jobs_table
from tests.servers.slapd import (
    SlapdServer,
    entries_sent,
    operation_counts,
    search_count,
    start_slapd,
    write_count,
)


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return Workspace(actor="tester")


def add_store(ws: Workspace, server: SlapdServer, url: str | None = None) -> None:
    definitions.save(ws, "store", definitions.parse("store", {
        "name": "ldap", "kind": "ldap", "url": url or server.url, "bind_dn": server.root_dn,
        "bind_password": server.root_pw,
    }))


def add_source(ws: Workspace, path: Path, header: str, rows: list[str], name: str = "hr") -> None:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    definitions.save(ws, "source", definitions.parse("source", {"name": name, "kind": "csv", "path": str(path)}))


PEOPLE_MAPPINGS: list[dict[str, Any]] = [
    {"attribute": "uid", "from": "id", "key": True},
    {"attribute": "cn", "join": {"fields": ["first", "last"]}},
    {"attribute": "sn", "from": "last"},
]


def save_job(ws: Workspace, container: str, **extra: Any) -> None:
    jobs.save_job(ws, definitions.parse("job", {
        "name": "people", "source": "hr",
        "destination": {"store": "ldap", "container": container},
        "mappings": PEOPLE_MAPPINGS,
        **extra,
    }))


def people(n: int, start: int = 0) -> list[str]:
    return [f"E{i:05d},First{i},Last{i}" for i in range(start, start + n)]


def read(server: SlapdServer, dn: str, *attrs: str) -> dict[str, list[bytes]]:
    conn = server.connect()
    try:
        return conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", list(attrs))[0][1]
    finally:
        conn.unbind_s()


# ---------------------------------------------------------------- resolve


def test_manager_is_resolved_from_an_employee_number(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    header = "id,first,last,number,boss"
    rows = ["E1,Ada,Lovelace,100,", "E2,Alan,Turing,200,100", "E3,Grace,Hopper,300,999"]
    add_source(ws, tmp_path / "hr.csv", header, rows)
    mappings = [*PEOPLE_MAPPINGS, {"attribute": "employeeNumber", "from": "number"}]
    save_job(ws, container, mappings=mappings)
    assert jobs.run_job(ws, "people").counts.created == 3

    manager = {"attribute": "manager", "from": "boss",
               "resolve": {"base_dn": container, "attribute": "employeeNumber", "scope": "one"}}
    save_job(ws, container, mappings=[*mappings, manager])
    searches = search_count(slapd)
    run = jobs.run_job(ws, "people")
    assert run.state is RunState.COMPLETED_WITH_ERRORS
    assert (run.counts.updated, run.counts.errors) == (1, 1)
    assert read(slapd, f"uid=E2,{container}", "manager")["manager"] == [f"uid=E1,{container}".encode()]
    (error,) = history.run_report(ws, run.id).errors
    assert error.key == "E3" and error.attribute == "manager" and "'999' matches no object" in error.message
    # The scope, the schema, the root entry and the one index: never a search per record.
    assert search_count(slapd) - searches <= 6


# ---------------------------------------------------------------- passwords


def bind_works(server: SlapdServer, dn: str, password: str) -> bool:
    conn = ldap.initialize(server.url)
    try:
        conn.simple_bind_s(dn, password)
        return conn.whoami_s().lower() == f"dn:{dn}".lower()
    except ldap.INVALID_CREDENTIALS:
        return False
    finally:
        conn.unbind_s()


def everything_recorded(ws: Workspace, run_id: int, plan_id: int) -> str:
    """Every place a password must not be: the plan, its exports, the run's errors and log."""
    out = [repr(list(history.plan_changes(ws, plan_id)))]
    for fmt in ("csv", "json", "ldif"):
        buffer = io.StringIO()
        history.export_plan(ws, plan_id, fmt, buffer)
        out.append(buffer.getvalue())
    report = history.run_report(ws, run_id, max_errors=None)
    out += [repr(report.run), repr(report.errors), repr(report.log)]
    return "\n".join(out)


def database_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("idsync.db*"))


def test_generated_passwords_bind_and_are_stored_nowhere_in_clear(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path, tmp_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", "id,first,last", people(3))
    save_job(ws, container, passwords={"generate": {"length": 24}, "recipients": ["helpdesk@example.org"]})
    run = jobs.run_job(ws, "people")
    assert run.state is RunState.SUCCEEDED and run.counts.created == 3
    assert job_features.password_count(ws, run.id) == 3
    recorded = everything_recorded(ws, run.id, run.plan_id or 0)
    stored = database_bytes(tmp_home)

    # Only the person who ran the job may take them.
    with pytest.raises(PermissionDeniedError, match="only to 'tester'"):
        job_features.take_passwords(Workspace(actor="someone-else"), run.id)
    taken = job_features.take_passwords(ws, run.id)
    assert sorted(p.key for p in taken) == ["E00000", "E00001", "E00002"]
    assert all(p.recipients == ["helpdesk@example.org"] for p in taken)
    for p in taken:
        assert len(p.password) == 24
        assert bind_works(slapd, p.dn, p.password)
        assert not bind_works(slapd, p.dn, p.password + "x")
        assert p.password not in recorded
        assert p.password.encode() not in stored
        assert p.password not in caplog.text
        assert not any(p.password in str(r.args) for r in caplog.records)
    assert caplog.records, "the capture saw the run's log records"
    # Shown once: they are gone.
    assert job_features.take_passwords(ws, run.id) == [] and job_features.password_count(ws, run.id) == 0


def test_a_fixed_password_is_a_secret_and_is_never_echoed(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path, tmp_home: Path
) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    secret = "Fixed-Secret-9f3a"
    add_source(ws, tmp_path / "hr.csv", "id,first,last", people(2))
    save_job(ws, container, passwords={"fixed": secret},
             destination={"store": "ldap", "container": container, "rdn_attribute": "cn"})
    # An entry already holds the DN of the first person: that create fails.
    conn = slapd.connect()
    try:
        conn.add_s(f"cn=First0 Last0,{container}", [("objectClass", [b"person"]), ("cn", [b"First0 Last0"]), ("sn", [b"x"])])
    finally:
        conn.unbind_s()
    run = jobs.run_job(ws, "people")
    assert (run.counts.created, run.counts.errors) == (1, 1)
    assert bind_works(slapd, f"cn=First1 Last1,{container}", secret)
    assert secret not in everything_recorded(ws, run.id, run.plan_id or 0)
    assert job_features.password_count(ws, run.id) == 0  # fixed passwords are not kept for delivery
    # Stored encrypted, out of the job's JSON and out of exports; `show` masks it.
    with ws.db.session() as session:
        body = session.execute(jobs_table.select().where(jobs_table.c.name == "people")).one().body
    assert "fixed" not in body["passwords"]
    assert secret.encode() not in database_bytes(tmp_home)
    exported = definitions.exportable(ws, "job", "people")
    assert exported["passwords"] == {}
    assert definitions.displayable(ws, "job", "people")["passwords"] == {"fixed": "********"}
    # Applying the export again keeps the stored password.
    assert jobs.save_job(ws, definitions.parse("job", exported)) == "unchanged"
    assert definitions.load(ws, "job", "people").definition.passwords.fixed == secret


def test_a_password_from_the_environment_stays_a_reference(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", "id,first,last", people(1))
    monkeypatch.setenv("NEW_USER_PW", "From-The-Env-42")
    save_job(ws, container, passwords={"fixed": "env:NEW_USER_PW"})
    assert definitions.exportable(ws, "job", "people")["passwords"] == {"fixed": "env:NEW_USER_PW"}
    assert jobs.run_job(ws, "people").counts.created == 1
    assert bind_works(slapd, f"uid=E00000,{container}", "From-The-Env-42")


def test_a_job_with_passwords_needs_a_password_source(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", "id,first,last", people(1))
    with pytest.raises(ConfigError, match="passwords needs fixed"):
        save_job(ws, slapd.new_container(), passwords={"recipients": ["a@example.org"]})


# ---------------------------------------------------------------- changed-only runs


def test_a_changed_only_run_by_timestamp(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    header = "id,first,last,changed"
    rows = [f"{r},2020-01-01T00:00:00Z" for r in people(30)]
    add_source(ws, tmp_path / "hr.csv", header, rows)
    save_job(ws, container, update_mode="changed", changed_by={"timestamp_field": "changed"})
    first = jobs.run_job(ws, "people")
    assert first.counts.created == 30  # no successful run before: every record is looked at

    writes = write_count(slapd)
    entries = entries_sent(slapd)
    second = jobs.run_job(ws, "people")
    assert entries_sent(slapd) - entries < 10  # the people were not read at all
    assert (second.counts.unchanged, second.counts.changed) == (30, 0)
    assert write_count(slapd) == writes

    rows[4] = "E00004,First4,Renamed,2999-01-01T00:00:00Z"
    add_source(ws, tmp_path / "hr.csv", header, rows)
    third = jobs.run_job(ws, "people")
    assert (third.counts.updated, third.counts.unchanged) == (1, 29)
    assert read(slapd, f"uid=E00004,{container}", "sn")["sn"] == [b"Renamed"]


@pytest.fixture(scope="module")
def slapd_100k() -> Iterator[tuple[SlapdServer, str]]:
    """A slapd of its own holding 100,000 people, loaded offline (slapadd)."""
    container = "ou=Many,dc=example,dc=org"
    ldif = [f"dn: {container}\nobjectClass: organizationalUnit\nou: Many\n\n"]
    ldif += [
        f"dn: uid=E{i:06d},{container}\nobjectClass: inetOrgPerson\nuid: E{i:06d}\n"
        f"cn: First{i} Last{i}\nsn: Last{i}\n\n"
        for i in range(100_000)
    ]
    server = start_slapd(tls=False, extra_ldif="".join(ldif))
    try:
        yield server, container
    finally:
        server.stop()


def test_an_unchanged_100k_source_reads_no_destination_objects(
    ws: Workspace, slapd_100k: tuple[SlapdServer, str], tmp_path: Path
) -> None:
    server, container = slapd_100k
    add_store(ws, server)
    rows = [f"E{i:06d},First{i},Last{i}" for i in range(100_000)]
    add_source(ws, tmp_path / "hr.csv", "id,first,last", rows)
    save_job(ws, container, update_mode="changed", changed_by={"hash": True})

    # No hashes yet: one paged read of the scope, every record compared, nothing written.
    before = operation_counts(server)
    first = jobs.run_job(ws, "people")
    assert first.state is RunState.SUCCEEDED
    assert (first.counts.unchanged, first.counts.changed) == (100_000, 0)
    after = operation_counts(server)
    assert sum(after.get(op, 0) - before.get(op, 0) for op in ("Add", "Modify", "Delete", "Modrdn")) == 0
    # One paged search: 100 pages of 1,000 (plus the schema, the root entry and the reading).
    assert after["Search"] - before["Search"] <= 100 + 4

    # Unchanged: no destination object is read, one by one or otherwise.
    writes, searches = write_count(server), search_count(server)
    entries = entries_sent(server)
    second = jobs.run_job(ws, "people")
    assert entries_sent(server) - entries < 10
    assert search_count(server) - searches < 10
    assert (second.counts.read, second.counts.unchanged, second.counts.changed) == (100_000, 100_000, 0)
    assert write_count(server) == writes

    # Acting on missing objects needs the scope: still one paged search, no write.
    save_job(ws, container, update_mode="changed", changed_by={"hash": True}, actions={"on_missing": "delete"})
    searches = search_count(server)
    entries = entries_sent(server)
    third = jobs.run_job(ws, "people")
    assert 100_000 <= entries_sent(server) - entries < 100_000 + 10
    assert search_count(server) - searches <= 100 + 6
    assert (third.counts.unchanged, third.counts.changed) == (100_000, 0)
    assert write_count(server) == writes


# ---------------------------------------------------------------- safety limits


def test_a_run_over_its_limit_is_held_and_writes_nothing(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path, tmp_home: Path
) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", "id,first,last", people(20))
    save_job(ws, container, actions={"on_missing": "delete"}, limits={"max_deletes": 10, "max_creates": 50})
    assert jobs.run_job(ws, "people").counts.created == 20

    add_source(ws, tmp_path / "hr.csv", "id,first,last", people(5))
    writes = write_count(slapd)
    held = jobs.run_job(ws, "people")
    assert held.state is RunState.HELD
    assert held.error == "held: 15 deletes exceed max_deletes 10"
    assert held.counts.deleted == 0 and held.counts.read == 5
    assert write_count(slapd) == writes
    plan = history.get_plan(ws, held.plan_id or 0)
    assert plan.state == "ready" and plan.counts.deleted == 15 and plan.change_count == 15

    # The CLI says so, with its own exit code.
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")} | {
        "IDSYNC_HOME": str(tmp_home), "IDSYNC_ACTOR": "tester", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "idsync", "job", "run", "people"], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "15 deletes exceed max_deletes 10" in proc.stdout and "--plan" in proc.stdout
    shown = subprocess.run([sys.executable, "-m", "idsync", "run", "show", str(held.id)], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert shown.returncode == 0 and "held" in shown.stdout and f"--plan {held.plan_id}" in shown.stdout
    assert write_count(slapd) == writes

    # Released: the stored plan is applied as it was.
    released = jobs.run_job(ws, "people", plan_id=held.plan_id)
    assert released.state is RunState.SUCCEEDED and released.counts.deleted == 15
    assert write_count(slapd) == writes + 15


def test_the_empty_source_guard_still_holds_with_limits(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", "id,first,last", people(3))
    save_job(ws, container, actions={"on_missing": "delete"}, limits={"max_deletes": 100})
    jobs.run_job(ws, "people")
    add_source(ws, tmp_path / "hr.csv", "id,first,last", [])
    writes = write_count(slapd)
    run = jobs.run_job(ws, "people")
    assert run.state not in (RunState.SUCCEEDED, RunState.HELD)
    assert run.error is not None and "allow_empty_source" in run.error
    assert write_count(slapd) == writes


# ---------------------------------------------------------------- group membership at scale


def test_one_member_more_in_a_5000_member_group_is_one_small_modify(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path
) -> None:
    people_ou = slapd.new_container("people")
    groups_ou = slapd.new_container("groups")
    with CountingProxy("127.0.0.1", int(slapd.url.rsplit(":", 1)[1])) as proxy:
        add_store(ws, slapd, url=f"ldap://127.0.0.1:{proxy.port}")
        add_source(ws, tmp_path / "hr.csv", "id,first,last", people(5001))
        save_job(ws, people_ou)
        assert jobs.run_job(ws, "people").counts.created == 5001

        keys = [f"E{i:05d}" for i in range(5000)]
        add_source(ws, tmp_path / "groups.csv", "name,members", [f"staff,{';'.join(keys)}"], name="groups")
        jobs.save_job(ws, definitions.parse("job", {
            "name": "groups", "source": "groups",
            "destination": {"store": "ldap", "container": groups_ou, "object_type": "group"},
            "mappings": [
                {"attribute": "cn", "from": "name", "key": True},
                {"attribute": "member", "from": "members", "multi_value_delimiter": ";",
                 "resolve": {"base_dn": people_ou, "attribute": "uid", "scope": "one"}},
            ],
        }))
        assert jobs.run_job(ws, "groups").counts.created == 1

        add_source(ws, tmp_path / "groups.csv", "name,members", [f"staff,{';'.join([*keys, 'E05000'])}"], name="groups")
        before = operation_counts(slapd)
        proxy.reset()
        run = jobs.run_job(ws, "groups")
        sent = proxy.sent
        after = operation_counts(slapd)

    assert run.state is RunState.SUCCEEDED and run.counts.updated == 1
    assert {op: after[op] - before[op] for op in ("Add", "Modify", "Delete", "Modrdn")} == {
        "Add": 0, "Modify": 1, "Delete": 0, "Modrdn": 0}
    (change,) = history.plan_changes(ws, run.plan_id or 0)
    assert [(m.op.value, m.values) for m in change.mods] == [("add", (f"uid=E05000,{people_ou}",))]
    member_list = sum(len(f"uid={k},{people_ou}") for k in keys)
    # Everything the client sent for the run (bind, searches, the modify) is a sliver of the member list.
    assert sent < member_list / 50, (sent, member_list)
    members = read(slapd, f"cn=staff,{groups_ou}", "member")["member"]
    assert len(members) == 5001
