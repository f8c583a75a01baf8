"""The Active Directory flavor of the LDAP store, against a slapd that carries
AD's attribute types.

Active Directory cannot run here. What the protocol allows is tested against
a private slapd loaded with an extra schema declaring ``objectGUID``,
``userAccountControl``, ``unicodePwd`` and ``sAMAccountName`` with AD's OIDs
and syntaxes (octet string, integer), and a structural ``user`` class: the
binary GUID travels as 16 bytes and comes back as GUID text used as the
anchor; the disable action computes ``userAccountControl`` from the value it
read; ``unicodePwd`` arrives on the server as the quoted UTF-16-LE bytes, and
only over StartTLS. What slapd cannot show (AD's own checks: password policy,
range retrieval, refusing ``unicodePwd`` over plain LDAP) is covered by the
unit tests with captured examples and listed in docs/architecture.md.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ldap
import pytest

import tests.servers.slapd as slapd_module
from idsync.connectors.activedirectory import decode_password
from idsync.connectors.ldap import LdapDirectory
from idsync.domain.changes import Change, ChangeOp
from idsync.domain.entry import Attrs, Scope
from idsync.domain.principals import Principal
from idsync.domain.results import RunState
from idsync.errors import ConfigError, ConnectorError
from idsync.services import definitions, history, jobs
from idsync.services.workspace import Workspace
from tests.servers.slapd import SlapdServer, start_slapd, write_count

AD_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID'
    EQUALITY octetStringMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
    EQUALITY integerMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.90 NAME 'unicodePwd'
    EQUALITY octetStringMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.40 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
    EQUALITY caseIgnoreMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 SINGLE-VALUE )
objectclass ( 1.2.840.113556.1.5.9 NAME 'user'
    SUP inetOrgPerson STRUCTURAL
    MAY ( objectGUID $ userAccountControl $ unicodePwd $ sAMAccountName ) )
"""

# Captured: PowerShell's [guid] text and the bytes AD stores for it (base64 as ldapsearch prints).
GUID_TEXT = "8c4ac332-975f-4717-ad7b-ba4a4e968fff"
GUID_BYTES = base64.b64decode("MsNKjF+XF0ete7pKTpaP/w==")
USER_CLASSES = ["top", "person", "organizationalPerson", "inetOrgPerson", "user"]


@pytest.fixture(scope="module")
def ad_slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    """A private slapd with AD's attribute types (its own server: the session's has the stock schema)."""
    folder = tmp_path_factory.mktemp("ad-schema")
    (folder / "ad.schema").write_text(AD_SCHEMA)
    with pytest.MonkeyPatch.context() as patch:
        # An absolute name replaces the schema folder in the include line.
        patch.setattr(slapd_module, "SCHEMAS", (*slapd_module.SCHEMAS, str(folder / "ad")))
        server = start_slapd(tls=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ws(tmp_home: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.delenv("IDSYNC_DATABASE_URL", raising=False)
    monkeypatch.delenv("IDSYNC_SECRET_KEY", raising=False)
    return Workspace(principal=Principal("tester"))


def ad_directory(server: SlapdServer, *, tls: bool = True) -> LdapDirectory:
    return LdapDirectory(
        url=server.url, bind_dn=server.root_dn, bind_password=server.root_pw,
        start_tls=tls, ca_file=server.ca_file if tls else None, flavor="active_directory",
    )


def add_user(server: SlapdServer, dn: str, sam: str, uac: str, guid: bytes) -> None:
    conn = server.connect()
    try:
        conn.add_s(dn, [
            ("objectClass", [c.encode() for c in USER_CLASSES]),
            ("cn", [sam.encode()]), ("sn", [sam.encode()]), ("sAMAccountName", [sam.encode()]),
            ("userAccountControl", [uac.encode()]), ("objectGUID", [guid]),
        ])
    finally:
        conn.unbind_s()


def raw_entry(server: SlapdServer, dn: str) -> dict[str, list[bytes]]:
    conn = server.connect()
    try:
        ((_dn, attrs),) = conn.search_s(dn, ldap.SCOPE_BASE, "(objectClass=*)", ["*"])
    finally:
        conn.unbind_s()
    found: dict[str, list[bytes]] = attrs
    return found


def add_store(ws: Workspace, server: SlapdServer, *, tls: bool = True, name: str = "ad") -> None:
    data: dict[str, Any] = {
        "name": name, "kind": "ldap", "url": server.url, "bind_dn": server.root_dn,
        "bind_password": server.root_pw, "flavor": "active_directory",
    }
    if tls:
        data.update(start_tls=True, ca_file=server.ca_file)
    definitions.save(ws, "store", definitions.parse("store", data))


def add_csv(ws: Workspace, path: Path, rows: list[str]) -> None:
    path.write_text("sam,name\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    definitions.save(ws, "source", definitions.parse("source", {"name": "hr", "kind": "csv", "path": str(path)}))


def ad_job(container: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "ad-users",
        "source": "hr",
        "destination": {"store": "ad", "container": container, "object_type": "custom",
                        "object_classes": USER_CLASSES, "rdn_attribute": "cn"},
        "mappings": [
            {"attribute": "sAMAccountName", "from": "sam", "key": True},
            {"attribute": "cn", "from": "sam"},
            {"attribute": "sn", "from": "name"},
            *extra.pop("mappings", []),
        ],
        **extra,
    }


def test_object_guid_is_read_as_guid_text_and_is_the_anchor(ad_slapd: SlapdServer) -> None:
    base = ad_slapd.new_container()
    add_user(ad_slapd, f"cn=ann,{base}", "ann", "512", GUID_BYTES)
    with ad_directory(ad_slapd) as directory:
        assert directory.anchor_attributes == ("objectGUID",)
        (entry,) = directory.search(base, Scope.ONE, "(sAMAccountName=ann)", ["objectGUID", "userAccountControl"])
    assert entry.attrs.get_values("objectGUID") == (GUID_TEXT,)
    assert entry.attrs.get_values("userAccountControl") == ("512",)
    with LdapDirectory(url=ad_slapd.url, bind_dn=ad_slapd.root_dn, bind_password=ad_slapd.root_pw) as generic:
        (raw,) = generic.search(base, Scope.ONE, "(sAMAccountName=ann)", ["objectGUID"])
        assert generic.anchor_attributes == ("entryUUID",) and generic.account_control is None
    assert raw.attrs.get_values("objectGUID") != (GUID_TEXT,)  # a generic store does not interpret it


def test_disable_sets_the_account_disable_bit_on_the_value_read(
    ws: Workspace, ad_slapd: SlapdServer, tmp_path: Path
) -> None:
    base = ad_slapd.new_container()
    add_user(ad_slapd, f"cn=stay,{base}", "stay", "512", bytes(range(16)))
    add_user(ad_slapd, f"cn=leave,{base}", "leave", "66048", GUID_BYTES)  # enabled, password never expires
    add_user(ad_slapd, f"cn=gone,{base}", "gone", "514", bytes(range(16, 32)))  # already disabled
    add_store(ws, ad_slapd)
    add_csv(ws, tmp_path / "hr.csv", ["stay,stay"])
    jobs.save_job(ws, definitions.parse("job", ad_job(base, actions={"on_missing": "disable"})))

    run = jobs.run_job(ws, "ad-users")
    assert run.state is RunState.SUCCEEDED, run.error
    assert (run.counts.disabled, run.counts.unchanged) == (1, 2)
    assert raw_entry(ad_slapd, f"cn=leave,{base}")["userAccountControl"] == [b"66050"]
    assert raw_entry(ad_slapd, f"cn=gone,{base}")["userAccountControl"] == [b"514"]
    assert raw_entry(ad_slapd, f"cn=stay,{base}")["userAccountControl"] == [b"512"]
    assert run.plan_id is not None
    (change,) = history.plan_changes(ws, run.plan_id)
    assert (change.op, change.anchor, change.key) == (ChangeOp.DISABLE, GUID_TEXT, "leave")
    assert [(m.attribute, m.values, m.before) for m in change.mods] == [("userAccountControl", ("66050",), ("66048",))]

    writes = write_count(ad_slapd)
    again = jobs.run_job(ws, "ad-users")
    assert (again.counts.disabled, again.counts.unchanged) == (0, 3)
    assert write_count(ad_slapd) == writes


def test_a_stored_disable_plan_leaves_an_account_whose_flags_changed_alone(
    ws: Workspace, ad_slapd: SlapdServer, tmp_path: Path
) -> None:
    base = ad_slapd.new_container()
    add_user(ad_slapd, f"cn=stay,{base}", "stay", "512", bytes(range(16)))
    add_user(ad_slapd, f"cn=leave,{base}", "leave", "512", GUID_BYTES)
    add_store(ws, ad_slapd)
    add_csv(ws, tmp_path / "hr.csv", ["stay,stay"])
    jobs.save_job(ws, definitions.parse("job", ad_job(base, actions={"on_missing": "disable"})))
    preview = jobs.preview_job(ws, "ad-users")
    assert preview.plan.counts.disabled == 1
    conn = ad_slapd.connect()
    try:
        conn.modify_s(f"cn=leave,{base}", [(ldap.MOD_REPLACE, "userAccountControl", [b"66048"])])
    finally:
        conn.unbind_s()
    run = jobs.run_job(ws, "ad-users", plan_id=preview.plan.id)
    assert run.counts.conflicts == 1 and run.counts.disabled == 0
    assert raw_entry(ad_slapd, f"cn=leave,{base}")["userAccountControl"] == [b"66048"]


def test_unicode_pwd_arrives_as_quoted_utf16le_over_start_tls(
    ws: Workspace, ad_slapd: SlapdServer, tmp_path: Path
) -> None:
    base = ad_slapd.new_container()
    add_store(ws, ad_slapd)
    add_csv(ws, tmp_path / "hr.csv", ["zoe,Zoë"])
    pw = {"attribute": "unicodePwd", "value": "Initial-Pässword-1", "new_only": True}
    jobs.save_job(ws, definitions.parse("job", ad_job(base, mappings=[pw])))
    run = jobs.run_job(ws, "ad-users")
    assert (run.state, run.counts.created) == (RunState.SUCCEEDED, 1), run.error
    stored = raw_entry(ad_slapd, f"cn=zoe,{base}")["unicodePwd"]
    assert stored == ['"Initial-Pässword-1"'.encode("utf-16-le")]
    assert decode_password(stored[0]) == "Initial-Pässword-1"


def test_unicode_pwd_without_tls_is_refused_when_the_job_is_saved(
    ws: Workspace, ad_slapd: SlapdServer, tmp_path: Path
) -> None:
    add_store(ws, ad_slapd, tls=False)
    add_csv(ws, tmp_path / "hr.csv", ["zoe,Zoe"])
    pw = {"attribute": "unicodePwd", "value": "Initial-Password-1", "new_only": True}
    with pytest.raises(ConfigError, match="unicodePwd can only be written over an encrypted connection"):
        jobs.save_job(ws, definitions.parse("job", ad_job("ou=x,dc=example,dc=org", mappings=[pw])))


def test_unicode_pwd_write_without_tls_fails_that_change_and_sends_nothing(ad_slapd: SlapdServer) -> None:
    base = ad_slapd.new_container()
    attrs = Attrs({"objectClass": USER_CLASSES, "cn": ["pat"], "sn": ["pat"], "unicodePwd": ["Secret-123"]})
    plain = Change(ChangeOp.CREATE, f"cn=pat,{base}", key="pat", attrs=attrs)
    fine = Change(ChangeOp.CREATE, f"cn=lee,{base}", key="lee",
                  attrs=Attrs({"objectClass": USER_CLASSES, "cn": ["lee"], "sn": ["lee"]}))
    writes = write_count(ad_slapd)
    with ad_directory(ad_slapd, tls=False) as directory:
        outcomes = {o.change.key: o.error for o in directory.apply([plain, fine])}
    assert outcomes["lee"] is None
    error = outcomes["pat"]
    assert error is not None and error.key == "pat" and error.attribute == "unicodePwd"
    assert "encrypted connection" in error.message and "Secret-123" not in error.message
    assert write_count(ad_slapd) == writes + 1  # only the change without a password was sent


def test_an_ad_store_as_a_source_gives_object_guid_as_text(
    ws: Workspace, ad_slapd: SlapdServer, slapd: SlapdServer
) -> None:
    src = ad_slapd.new_container()
    add_user(ad_slapd, f"cn=ann,{src}", "ann", "512", GUID_BYTES)
    add_store(ws, ad_slapd)
    definitions.save(ws, "store", definitions.parse("store", {
        "name": "ldap", "kind": "ldap", "url": slapd.url, "bind_dn": slapd.root_dn, "bind_password": slapd.root_pw,
    }))
    dst = slapd.new_container()
    jobs.save_job(ws, definitions.parse("job", {
        "name": "from-ad",
        "source": {"store": "ad", "base_dn": src, "filter": "(objectClass=user)"},
        "destination": {"store": "ldap", "container": dst},
        "mappings": [
            {"attribute": "uid", "from": "sAMAccountName", "key": True},
            {"attribute": "cn", "from": "cn"},
            {"attribute": "sn", "from": "sn"},
            {"attribute": "employeeNumber", "from": "objectGUID"},
        ],
    }))
    run = jobs.run_job(ws, "from-ad")
    assert (run.state, run.counts.created) == (RunState.SUCCEEDED, 1), run.error
    assert raw_entry(slapd, f"uid=ann,{dst}")["employeeNumber"] == [GUID_TEXT.encode()]


def test_a_range_the_server_does_not_continue_fails_instead_of_truncating(ad_slapd: SlapdServer) -> None:
    """The follow-up request of range retrieval is a real base search; slapd
    knows no ranges and answers it with nothing, which must stop the read
    (a truncated ``member`` list would make the planner remove members)."""
    base = ad_slapd.new_container()
    group = f"cn=big,{base}"
    conn = ad_slapd.connect()
    try:
        conn.add_s(group, [("objectClass", [b"groupOfNames"]), ("cn", [b"big"]), ("member", [base.encode()])])
    finally:
        conn.unbind_s()
    first_part = {"cn": [b"big"], "member;range=0-1499": [base.encode()] * 1500}
    expected = r"range retrieval of 'member' of cn=big.*asked for values from 1500"
    with ad_directory(ad_slapd) as directory, pytest.raises(ConnectorError, match=expected):
        directory._complete_ranges(directory._connection(), group, first_part)


def test_cli_adds_an_active_directory_store_and_lists_store_sources(
    ws: Workspace, ad_slapd: SlapdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from idsync.cli.app import app

    monkeypatch.setenv("AD_TEST_PW", ad_slapd.root_pw)
    runner = CliRunner()
    added = runner.invoke(app, [
        "store", "add", "ad", "--kind", "ldap", "--active-directory", "--url", ad_slapd.url, "--start-tls",
        "--ca-file", str(ad_slapd.ca_file), "--bind-dn", ad_slapd.root_dn, "--password-env", "AD_TEST_PW",
    ])
    assert added.exit_code == 0, added.output
    assert definitions.load(ws, "store", "ad").definition.flavor == "active_directory"
    tested = runner.invoke(app, ["store", "test", "ad"])
    assert tested.exit_code == 0 and "bound as" in tested.output
    jobs.save_job(ws, definitions.parse("job", {
        "name": "from-ad", "source": {"store": "ad", "base_dn": ad_slapd.base_dn},
        "destination": {"store": "ad", "container": f"ou=copy,{ad_slapd.base_dn}"},
        "mappings": [{"attribute": "cn", "from": "cn", "key": True}],
    }))
    listed = runner.invoke(app, ["job", "list"])
    assert listed.exit_code == 0 and "store ad" in listed.output
