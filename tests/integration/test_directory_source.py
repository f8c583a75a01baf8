"""Directory-to-directory jobs through the service layer the CLI uses.

One subtree of the private slapd is the source, another the destination:
the first run creates, a re-run writes nothing (counted by the server), and
an attribute changed in the source arrives as exactly one modify of that
attribute. The same job runs between two subtrees of an embedded directory
and from the embedded directory to slapd.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from idsync.domain.changes import ChangeOp
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import ConfigError
from idsync.services import connections, definitions, history, jobs
from idsync.services.workspace import Workspace
from tests.servers.slapd import SlapdServer, write_count


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return Workspace(principal=Principal("tester"))


def add_ldap_store(ws: Workspace, slapd: SlapdServer, name: str = "ldap") -> None:
    definitions.save(ws, "store", definitions.parse("store", {
        "name": name, "kind": "ldap", "url": slapd.url, "bind_dn": slapd.root_dn, "bind_password": slapd.root_pw,
    }))


def add_local_store(ws: Workspace, path: Path, name: str = "local") -> None:
    definitions.save(ws, "store", definitions.parse("store", {"name": name, "kind": "local", "path": str(path)}))


def person_ldif(uid: str, n: int) -> list[tuple[str, list[bytes]]]:
    return [
        ("objectClass", [b"inetOrgPerson"]),
        ("uid", [uid.encode()]),
        ("cn", [f"Person {n}".encode()]),
        ("sn", [f"Last{n}".encode()]),
        ("mail", [f"{uid}@example.org".encode()]),
        ("telephoneNumber", [f"+1 555 {n:04d}".encode(), f"+1 555 9{n:03d}".encode()]),
    ]


def fill_slapd(slapd: SlapdServer, container: str, count: int) -> None:
    conn = slapd.connect()
    try:
        for n in range(count):
            conn.add_s(f"uid=p{n:03d},{container}", person_ldif(f"p{n:03d}", n))
    finally:
        conn.unbind_s()


def copy_job(source: dict[str, Any], store: str, container: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "copy",
        "source": source,
        "destination": {"store": store, "container": container},
        "mappings": [
            {"attribute": "uid", "from": "uid", "key": True},
            {"attribute": "cn", "from": "cn"},
            {"attribute": "sn", "from": "sn"},
            {"attribute": "mail", "from": "mail"},
            {"attribute": "telephoneNumber", "from": "telephoneNumber", "multi_value_delimiter": "\n"},
        ],
        "actions": {"on_missing": "delete"},
        **extra,
    }


def stamps(slapd: SlapdServer, container: str) -> dict[str, bytes]:
    conn = slapd.connect()
    try:
        found = conn.search_s(container, 2, "(objectClass=inetOrgPerson)", ["modifyTimestamp"])
    finally:
        conn.unbind_s()
    return {dn: attrs["modifyTimestamp"][0] for dn, attrs in found}


def read_entry(slapd: SlapdServer, dn: str) -> dict[str, list[bytes]]:
    conn = slapd.connect()
    try:
        ((_dn, attrs),) = conn.search_s(dn, 0, "(objectClass=*)")
    finally:
        conn.unbind_s()
    found: dict[str, list[bytes]] = attrs
    return found


def test_slapd_subtree_to_subtree_create_rerun_and_one_change(ws: Workspace, slapd: SlapdServer) -> None:
    src, dst = slapd.new_container("src"), slapd.new_container("dst")
    fill_slapd(slapd, src, 40)
    add_ldap_store(ws, slapd)
    source = {
        "store": "ldap", "base_dn": src, "filter": "(objectClass=inetOrgPerson)",
        "attributes": ["uid", "cn", "sn", "mail", "telephoneNumber"],
    }
    jobs.save_job(ws, definitions.parse("job", copy_job(source, "ldap", dst)))

    first = jobs.run_job(ws, "copy")
    assert first.state is RunState.SUCCEEDED, first.error
    assert (first.counts.read, first.counts.created, first.counts.errors) == (40, 40, 0)
    copied = read_entry(slapd, f"uid=p007,{dst}")
    assert copied["mail"] == [b"p007@example.org"]
    assert sorted(copied["telephoneNumber"]) == [b"+1 555 0007", b"+1 555 9007"]

    writes, before = write_count(slapd), stamps(slapd, dst)
    second = jobs.run_job(ws, "copy")
    assert second.state is RunState.SUCCEEDED
    assert (second.counts.read, second.counts.unchanged, second.counts.changed) == (40, 40, 0)
    assert write_count(slapd) == writes
    assert stamps(slapd, dst) == before

    conn = slapd.connect()
    try:
        conn.modify_s(f"uid=p012,{src}", [(2, "mail", [b"new.p012@example.org"])])  # MOD_REPLACE
    finally:
        conn.unbind_s()
    writes = write_count(slapd)
    third = jobs.run_job(ws, "copy")
    assert third.state is RunState.SUCCEEDED
    assert (third.counts.updated, third.counts.unchanged, third.counts.changed) == (1, 39, 1)
    assert write_count(slapd) == writes + 1  # exactly one modify reached the server
    assert third.plan_id is not None
    (change,) = history.plan_changes(ws, third.plan_id)
    assert (change.op, change.dn) == (ChangeOp.UPDATE, f"uid=p012,{dst}")
    assert [(m.attribute, m.values, m.before) for m in change.mods] == [
        ("mail", ("new.p012@example.org",), ("p012@example.org",))
    ]
    assert change.anchor  # the destination's entryUUID
    assert read_entry(slapd, f"uid=p012,{dst}")["mail"] == [b"new.p012@example.org"]


def test_entries_removed_from_the_source_subtree_are_deleted(ws: Workspace, slapd: SlapdServer) -> None:
    src, dst = slapd.new_container("src"), slapd.new_container("dst")
    fill_slapd(slapd, src, 5)
    add_ldap_store(ws, slapd)
    jobs.save_job(ws, definitions.parse("job", copy_job(
        {"store": "ldap", "base_dn": src, "filter": "(objectClass=inetOrgPerson)"}, "ldap", dst,
    )))
    assert jobs.run_job(ws, "copy").counts.created == 5
    conn = slapd.connect()
    try:
        conn.delete_s(f"uid=p003,{src}")
    finally:
        conn.unbind_s()
    run = jobs.run_job(ws, "copy")
    assert (run.counts.deleted, run.counts.unchanged) == (1, 4)
    assert sorted(stamps(slapd, dst)) == sorted(f"uid=p{n:03d},{dst}" for n in (0, 1, 2, 4))


def test_without_attributes_the_fields_the_mappings_read_are_requested(ws: Workspace, slapd: SlapdServer) -> None:
    src, dst = slapd.new_container("src"), slapd.new_container("dst")
    fill_slapd(slapd, src, 3)
    add_ldap_store(ws, slapd)
    data = copy_job({"store": "ldap", "base_dn": src, "scope": "one"}, "ldap", dst)
    data["mappings"][1] = {"attribute": "cn", "from": "commonName"}  # slapd answers with "cn"
    data["mappings"].append({"attribute": "description", "expression": "source['dn'] + ' / ' + source['SN']"})
    jobs.save_job(ws, definitions.parse("job", data))
    _id, job = jobs.load_job(ws, "copy")
    assert connections.fields_read(job) == ["uid", "commonName", "sn", "mail", "telephoneNumber", "SN"]
    run = jobs.run_job(ws, "copy")
    assert run.state is RunState.SUCCEEDED, run.error
    assert run.counts.created == 3
    made = read_entry(slapd, f"uid=p001,{dst}")
    assert made["cn"] == [b"Person 1"]
    assert made["description"] == [f"uid=p001,{src} / Last1".encode()]


def test_local_to_local_between_two_subtrees(ws: Workspace, tmp_path: Path) -> None:
    from idsync.connectors.local import LocalDirectory
    from idsync.domain.changes import Change
    from idsync.domain.entry import Attrs

    path = tmp_path / "local.directory"
    suffix = "dc=example,dc=org"
    with LocalDirectory(path, suffix) as d:
        ous = [Change(ChangeOp.CREATE, f"ou={n},{suffix}", attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": [n]}))
               for n in ("Src", "Dst")]
        people = [
            Change(ChangeOp.CREATE, f"uid=u{n},ou=Src,{suffix}", attrs=Attrs({
                "objectClass": ["inetOrgPerson"], "uid": [f"u{n}"], "cn": [f"U {n}"], "sn": ["S"],
                "telephoneNumber": ["1", "2"],
            }))
            for n in range(4)
        ]
        assert all(o.error is None for o in d.apply([*ous, *people]))
    add_local_store(ws, path)
    jobs.save_job(ws, definitions.parse("job", copy_job(
        {"store": "local", "base_dn": f"ou=Src,{suffix}", "filter": "(objectClass=inetOrgPerson)"},
        "local", f"ou=Dst,{suffix}",
    )))
    first = jobs.run_job(ws, "copy")
    assert (first.state, first.counts.created) == (RunState.SUCCEEDED, 4), first.error
    second = jobs.run_job(ws, "copy")
    assert (second.counts.unchanged, second.counts.changed) == (4, 0)
    with LocalDirectory(path, suffix) as d:
        (u2,) = d.search(f"ou=Dst,{suffix}", filterstr="(uid=u2)", attributes=["telephoneNumber"])
        assert set(u2.attrs.get_values("telephoneNumber")) == {"1", "2"}


def test_embedded_directory_to_slapd(ws: Workspace, slapd: SlapdServer, tmp_path: Path) -> None:
    from idsync.connectors.local import LocalDirectory
    from idsync.domain.changes import Change
    from idsync.domain.entry import Attrs

    path = tmp_path / "hr.directory"
    suffix = "dc=example,dc=org"
    with LocalDirectory(path, suffix) as d:
        changes = [Change(ChangeOp.CREATE, f"ou=HR,{suffix}", attrs=Attrs({"objectClass": ["organizationalUnit"], "ou": ["HR"]}))]
        changes += [
            Change(ChangeOp.CREATE, f"uid=h{n},ou=HR,{suffix}", attrs=Attrs({
                "objectClass": ["inetOrgPerson"], "uid": [f"h{n}"], "cn": [f"H {n}"], "sn": ["H"], "mail": [f"h{n}@x.org"],
            }))
            for n in range(3)
        ]
        assert all(o.error is None for o in d.apply(changes))
    add_local_store(ws, path, "hr")
    add_ldap_store(ws, slapd)
    dst = slapd.new_container("dst")
    jobs.save_job(ws, definitions.parse("job", copy_job(
        {"store": "hr", "base_dn": f"ou=HR,{suffix}", "filter": "(objectClass=inetOrgPerson)"}, "ldap", dst,
    )))
    run = jobs.run_job(ws, "copy")
    assert (run.state, run.counts.created) == (RunState.SUCCEEDED, 3), run.error
    assert read_entry(slapd, f"uid=h1,{dst}")["mail"] == [b"h1@x.org"]


def test_a_missing_source_base_fails_the_run_and_writes_nothing(ws: Workspace, slapd: SlapdServer) -> None:
    dst = slapd.new_container("dst")
    add_ldap_store(ws, slapd)
    missing = f"ou=missing,{slapd.base_dn}"
    jobs.save_job(ws, definitions.parse("job", copy_job({"store": "ldap", "base_dn": missing}, "ldap", dst)))
    writes = write_count(slapd)
    run = jobs.run_job(ws, "copy")
    assert run.state is RunState.FAILED
    assert run.error is not None and "job source store 'ldap'" in run.error and "ou=missing" in run.error
    assert write_count(slapd) == writes


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"store": "nope", "base_dn": "ou=x,dc=example,dc=org"}, "no identity store named 'nope'"),
        ({"store": "ldap", "base_dn": "not a dn"}, "source.base_dn"),
        ({"store": "ldap", "base_dn": "ou=x,dc=example,dc=org", "filter": "(uid=a"}, "source.filter"),
    ],
)
def test_bad_store_sources_are_refused_when_saved(
    ws: Workspace, slapd: SlapdServer, source: dict[str, Any], message: str
) -> None:
    add_ldap_store(ws, slapd)
    with pytest.raises(ConfigError, match=message):
        jobs.save_job(ws, definitions.parse("job", copy_job(source, "ldap", "ou=y,dc=example,dc=org")))


def test_disable_without_disable_with_needs_an_active_directory_destination(ws: Workspace, slapd: SlapdServer) -> None:
    add_ldap_store(ws, slapd)
    data = copy_job({"store": "ldap", "base_dn": "ou=x,dc=example,dc=org"}, "ldap", "ou=y,dc=example,dc=org")
    data["actions"] = {"on_missing": "disable"}
    with pytest.raises(ConfigError, match=r"disable needs disable_with .* on store 'ldap'.*Active Directory"):
        jobs.save_job(ws, definitions.parse("job", data))


def test_a_store_source_job_exports_and_reads_back(ws: Workspace, slapd: SlapdServer) -> None:
    add_ldap_store(ws, slapd)
    source = {"store": "ldap", "base_dn": "ou=x,dc=example,dc=org", "scope": "one", "attributes": ["uid", "cn"]}
    # offline: the mappings read fields the source's attributes leave out (refused when checked)
    jobs.save_job(ws, definitions.parse("job", copy_job(source, "ldap", "ou=y,dc=example,dc=org")), offline=True)
    body = definitions.exportable(ws, "job", "copy")
    assert body["source"] == source
    assert definitions.parse("job", body).source.attributes == ["uid", "cn"]
