"""Sync jobs against a real slapd, through the service layer the CLI uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.services import definitions, jobs
from idsync.services.workspace import Workspace
from tests.servers.slapd import SlapdServer, write_count


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return Workspace(principal=Principal("tester"))


def add_store(ws: Workspace, slapd: SlapdServer, password: str | None = None, name: str = "ldap") -> None:
    definitions.save(ws, "store", definitions.parse("store", {
        "name": name, "kind": "ldap", "url": slapd.url, "bind_dn": slapd.root_dn,
        "bind_password": password or slapd.root_pw,
    }))


def add_source(ws: Workspace, path: Path, rows: list[str]) -> None:
    path.write_text("id,first,last,mail\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    definitions.save(ws, "source", definitions.parse("source", {"name": "hr", "kind": "csv", "path": str(path)}))


def add_job(
    ws: Workspace, container: str, extra_mappings: list[dict[str, object]] | None = None, *, offline: bool = False
) -> None:
    jobs.save_job(ws, offline=offline, job=definitions.parse("job", {
        "name": "people", "source": "hr",
        "destination": {"store": "ldap", "container": container},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
            {"attribute": "mail", "from": "mail", "transforms": ["lower"]},
            *(extra_mappings or []),
        ],
        "actions": {"on_missing": "delete"},
    }))


def people(n: int) -> list[str]:
    return [f"E{i:04d},First{i},Last{i},User{i}@Example.org" for i in range(n)]


def stamps(slapd: SlapdServer, container: str) -> dict[str, bytes]:
    conn = slapd.connect()
    try:
        res = conn.search_s(container, 2, "(objectClass=inetOrgPerson)", ["modifyTimestamp"])
    finally:
        conn.unbind_s()
    return {dn: attrs["modifyTimestamp"][0] for dn, attrs in res}


def test_resync_without_source_changes_writes_nothing(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", people(300))
    add_job(ws, container)
    first = jobs.run_job(ws, "people")
    assert first.state is RunState.SUCCEEDED, first.error
    assert first.counts.created == 300
    before_writes, before_stamps = write_count(slapd), stamps(slapd, container)

    second = jobs.run_job(ws, "people")
    assert second.state is RunState.SUCCEEDED
    assert (second.counts.unchanged, second.counts.changed) == (300, 0)
    assert write_count(slapd) == before_writes
    assert stamps(slapd, container) == before_stamps


def test_preview_writes_nothing_and_its_plan_applies(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", people(20))
    add_job(ws, container)
    writes = write_count(slapd)
    preview = jobs.preview_job(ws, "people")
    assert preview.plan.counts.created == 20
    assert write_count(slapd) == writes
    run = jobs.run_job(ws, "people", plan_id=preview.plan.id)
    assert run.counts.created == 20 and run.state is RunState.SUCCEEDED
    assert write_count(slapd) == writes + 20


def test_mapping_to_an_attribute_the_schema_lacks_is_refused_before_writing(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path
) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", people(5))
    with pytest.raises(ConfigError, match="attribute 'favouriteColour' is not in the schema of store 'ldap'"):
        add_job(ws, container, [{"attribute": "favouriteColour", "from": "first"}])
    add_job(ws, container, [{"attribute": "favouriteColour", "from": "first"}], offline=True)
    writes = write_count(slapd)
    run = jobs.run_job(ws, "people")
    assert run.state is RunState.FAILED
    assert run.error is not None and "favouriteColour" in run.error and "schema" in run.error
    assert write_count(slapd) == writes


def test_wrong_bind_password_fails_the_run_without_echoing_it(
    ws: Workspace, slapd: SlapdServer, tmp_path: Path
) -> None:
    container = slapd.new_container()
    add_store(ws, slapd, password="not-the-password-123")
    add_source(ws, tmp_path / "hr.csv", people(2))
    add_job(ws, container)
    run = jobs.run_job(ws, "people")
    assert run.state is RunState.FAILED
    assert run.error and "not-the-password-123" not in run.error
    assert "credential" in run.error.lower()


def test_filter_and_dn_special_values_sync_exactly(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    rows = ['"*)(uid=*",Ann,"O\'Neil, Jr + <x>; \\\\",a@x.org', '" lead",Ümit,"trail ",u@x.org', "E1,Plain,Person,p@x.org"]
    add_source(ws, tmp_path / "hr.csv", rows)
    jobs.save_job(ws, definitions.parse("job", {
        "name": "people", "source": "hr",
        "destination": {"store": "ldap", "container": container, "rdn_attribute": "cn"},
        "mappings": [
            {"attribute": "uid", "from": "id", "key": True},
            {"attribute": "cn", "join": {"fields": ["first", "last"]}},
            {"attribute": "sn", "from": "last"},
        ],
    }))
    first = jobs.run_job(ws, "people")
    assert first.counts.created == 3, first
    second = jobs.run_job(ws, "people")
    assert (second.counts.unchanged, second.counts.changed, second.counts.errors) == (3, 0, 0)


def test_unknown_store_in_a_job_is_a_config_error(ws: Workspace, tmp_path: Path) -> None:
    add_source(ws, tmp_path / "hr.csv", people(1))
    with pytest.raises(ConfigError, match="no identity store named 'ldap'"):
        add_job(ws, "ou=x,dc=example,dc=org")


def test_an_empty_source_fails_the_run_and_deletes_nothing(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    container = slapd.new_container()
    add_store(ws, slapd)
    add_source(ws, tmp_path / "hr.csv", people(3))
    add_job(ws, container)
    assert jobs.run_job(ws, "people").counts.created == 3
    add_source(ws, tmp_path / "hr.csv", [])
    writes = write_count(slapd)
    run = jobs.run_job(ws, "people")
    assert run.state is RunState.FAILED
    assert run.error is not None and "allow_empty_source" in run.error
    assert write_count(slapd) == writes
