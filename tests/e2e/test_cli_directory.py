"""``idsync directory``: search, export, import and containers as a user runs them,
on the embedded directory and on a real slapd; and a first job with no dead end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from idsync.domain.dn import normalize_dn
from idsync.domain.entry import Attrs
from idsync.domain.ldif_reader import LdifRecord, read_ldif
from tests.e2e.test_cli import SUFFIX, Cli
from tests.servers.slapd import SlapdServer

PEOPLE = f"ou=People,{SUFFIX}"

LDIF = f"""\
version: 1

dn: {PEOPLE}
objectClass: organizationalUnit
ou: People

dn: cn=Doe\\, John+uid=jd,{PEOPLE}
objectClass: inetOrgPerson
cn: Doe, John
uid: jd
sn: Doe
displayName:: Wm/DqyDDnG5hbA==
description: folded over
  two lines

dn: uid=dup,{PEOPLE}
objectClass: account
uid: dup

dn: uid=dup,{PEOPLE}
objectClass: account
uid: dup

dn: uid=broken,{PEOPLE}
changetype: explode

dn: uid=ada,{PEOPLE}
objectClass: inetOrgPerson
uid: ada
cn: Ada Lovelace
sn: Lovelace
"""


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def records(text: str) -> dict[str, Attrs]:
    """Normalised DN → attributes of each record of an LDIF text."""
    found = {}
    for item in read_ldif(text.splitlines(keepends=True)):
        assert isinstance(item, LdifRecord), item
        found[normalize_dn(item.change.dn)] = item.change.attrs or Attrs()
    return found


def local_store(cli: Cli, tmp_path: Path, name: str = "dir") -> None:
    cli("store", "add", name, "--kind", "local", "--path", str(tmp_path / f"{name}.db"))


def test_import_reports_bad_records_with_their_lines_and_exits_3(cli: Cli, tmp_path: Path) -> None:
    local_store(cli, tmp_path)
    (tmp_path / "people.ldif").write_text(LDIF, encoding="utf-8")
    dry = cli("directory", "import", "dir", str(tmp_path / "people.ldif"), "--dry-run", ok=False)
    assert dry.returncode == 3
    assert f"line 3: add {PEOPLE}: 2 attribute(s)" in dry.stdout
    assert "dry run, nothing written: would have added 5, modified 0, deleted 0, renamed 0, failed 1" in dry.stdout
    assert cli("directory", "search", "dir", "--scope", "one", "--format", "json").stdout == "[]\n"

    done = cli("directory", "import", "dir", str(tmp_path / "people.ldif"), ok=False)
    assert done.returncode == 3
    assert done.stdout.strip() == "added 4, modified 0, deleted 0, renamed 0, failed 2"
    errors = done.stderr.splitlines()
    assert "error: line 25: unknown changetype 'explode'; one of add, delete, modify, modrdn, moddn" in errors
    assert any(e.startswith(f"error: line 20: add uid=dup,{PEOPLE} failed: Already exists") for e in errors)

    found = json.loads(cli("directory", "search", "dir", "--filter", "(ou:dn:=people)", "--attrs", "cn,displayName",
                           "--format", "json").stdout)
    by_dn = {e["dn"]: e["attributes"] for e in found}
    assert by_dn[f"cn=Doe\\, John+uid=jd,{PEOPLE}"] == {"cn": ["Doe, John"], "displayName": ["Zoë Ünal"]}
    assert set(by_dn) == {PEOPLE, f"cn=Doe\\, John+uid=jd,{PEOPLE}", f"uid=dup,{PEOPLE}", f"uid=ada,{PEOPLE}"}


def test_stop_on_error_and_a_missing_file(cli: Cli, tmp_path: Path) -> None:
    local_store(cli, tmp_path)
    (tmp_path / "people.ldif").write_text(LDIF, encoding="utf-8")
    stopped = cli("directory", "import", "dir", str(tmp_path / "people.ldif"), "--stop-on-error", "--json", ok=False)
    assert stopped.returncode == 3
    assert json.loads(stopped.stdout)["stopped"] is True
    missing = cli("directory", "import", "dir", str(tmp_path / "absent.ldif"), ok=False)
    assert missing.returncode == 1 and missing.stderr.startswith("idsync: error: LDIF file not found")
    unknown = cli("directory", "import", "nope", str(tmp_path / "people.ldif"), ok=False)
    assert unknown.returncode == 6


def test_export_writes_ldif_that_imports_into_another_store(cli: Cli, tmp_path: Path) -> None:
    local_store(cli, tmp_path)
    local_store(cli, tmp_path, "copy")
    (tmp_path / "people.ldif").write_text(LDIF, encoding="utf-8")
    cli("directory", "import", "dir", str(tmp_path / "people.ldif"), ok=False)
    exported = cli("directory", "export", "dir").stdout
    assert exported.startswith("version: 1\n\ndn: dc=example,dc=org\n")
    assert "displayName:: Wm/DqyDDnG5hbA==" in exported
    assert "entryUUID" not in exported
    assert "entryUUID: " in cli("directory", "export", "dir", "--operational").stdout

    written = cli("directory", "export", "dir", "-o", str(tmp_path / "out.ldif"))
    assert "5 entries written to" in written.stderr
    assert (tmp_path / "out.ldif").read_text(encoding="utf-8") == exported
    imported = cli("directory", "import", "copy", str(tmp_path / "out.ldif"))
    assert imported.stdout.strip() == "added 5, modified 0, deleted 0, renamed 0, failed 0"
    assert cli("directory", "export", "copy").stdout == exported


def test_search_formats(cli: Cli, tmp_path: Path) -> None:
    local_store(cli, tmp_path)
    cli("directory", "add-container", "dir", f"ou=Staff,{PEOPLE}")
    ldif = cli("directory", "search", "dir", "--base", PEOPLE, "--scope", "sub").stdout
    assert ldif == (
        f"version: 1\n\ndn: {PEOPLE}\nobjectClass: top\nobjectClass: organizationalUnit\nou: People\n\n"
        f"dn: ou=Staff,{PEOPLE}\nobjectClass: top\nobjectClass: organizationalUnit\nou: Staff\n\n"
    )
    table = cli("directory", "search", "dir", "--base", PEOPLE, "--attrs", "ou", "--format", "table")
    assert f"ou=Staff,{PEOPLE}" in table.stdout and "Staff" in table.stdout and "2 entries" in table.stderr
    bad = cli("directory", "search", "dir", "--filter", "(ou=x", ok=False)
    assert bad.returncode == 1 and "invalid LDAP filter" in bad.stderr
    missing = cli("directory", "search", "dir", "--base", f"ou=Nowhere,{SUFFIX}", "--format", "json", ok=False)
    assert missing.returncode == 6 and missing.stdout == ""


def test_add_container_creates_the_missing_parents_once(cli: Cli, tmp_path: Path) -> None:
    local_store(cli, tmp_path)
    made = cli("directory", "add-container", "dir", f"ou=Staff,{PEOPLE}")
    assert made.stdout.splitlines() == [f"created {PEOPLE}", f"created ou=Staff,{PEOPLE}"]
    again = cli("directory", "add-container", "dir", f"ou=Staff,{PEOPLE}", "--json")
    assert json.loads(again.stdout) == {"dn": f"ou=Staff,{PEOPLE}", "created": []}
    refused = cli("directory", "add-container", "dir", f"cn=Users,{SUFFIX}", ok=False)
    assert refused.returncode == 1 and "cannot tell which object class" in refused.stderr
    assert "hint: name the container ou=..., or create it from an LDIF file" in refused.stderr


STORE_YAML = """\
stores:
  - name: mirror
    kind: local
    path: {path}
    suffix_attributes:
      objectClass: [top, dcObject, organization]
      o: Example Inc.
"""

FIRST_JOB = """\
name: people
source: hr
destination:
  store: dir
  container: "ou=Staff,ou=People,dc=example,dc=org"
  create_container: true
mappings:
  - {attribute: uid, from: id, key: true}
  - {attribute: cn, join: {fields: [first, last]}}
  - {attribute: sn, from: last}
"""


def test_a_store_its_container_and_a_first_job_without_a_dead_end(cli: Cli, tmp_path: Path) -> None:
    local_store(cli, tmp_path)
    (tmp_path / "hr.csv").write_text("id,first,last\n1,Ada,Lovelace\n2,Alan,Turing\n", encoding="utf-8")
    cli("source", "add", "hr", "--path", str(tmp_path / "hr.csv"))
    (tmp_path / "job.yaml").write_text(FIRST_JOB.replace("  create_container: true\n", ""), encoding="utf-8")
    cli("job", "create", "--from", str(tmp_path / "job.yaml"))
    stuck = cli("job", "preview", "people", ok=False)
    assert "hint: create that entry, or correct the job's destination (`idsync directory add-container STORE DN`)" in (
        stuck.stderr
    )
    # Either way out works: the container by hand, or the job creating it.
    (tmp_path / "job.yaml").write_text(FIRST_JOB, encoding="utf-8")
    cli("job", "create", "--from", str(tmp_path / "job.yaml"))
    preview = json.loads(cli("job", "preview", "people", "--json").stdout)
    assert preview["plan"]["counts"]["created"] == 4
    cli("job", "run", "people")
    dns = [e["dn"] for e in json.loads(cli("directory", "search", "dir", "--base", PEOPLE, "--json").stdout)]
    assert dns == [PEOPLE, f"ou=Staff,{PEOPLE}", f"uid=1,ou=Staff,{PEOPLE}", f"uid=2,ou=Staff,{PEOPLE}"]


def test_a_store_whose_suffix_entry_is_given(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "stores.yaml").write_text(STORE_YAML.format(path=tmp_path / "mirror.db"), encoding="utf-8")
    cli("apply", "-f", str(tmp_path / "stores.yaml"))
    found = json.loads(cli("directory", "search", "mirror", "--scope", "base", "--json").stdout)
    assert found == [{"dn": SUFFIX, "attributes": {
        "objectClass": ["top", "dcObject", "organization"], "o": ["Example Inc."], "dc": ["example"],
    }}]


@pytest.mark.slapd
def test_a_server_exported_and_imported_into_the_embedded_directory(
    cli: Cli, tmp_path: Path, slapd: SlapdServer
) -> None:
    base = slapd.new_container()
    cli.env["SLAPD_PASSWORD"] = slapd.root_pw
    cli("store", "add", "corp", "--kind", "ldap", "--url", slapd.url, "--bind-dn", slapd.root_dn,
        "--password-env", "SLAPD_PASSWORD")
    local_store(cli, tmp_path)
    made = cli("directory", "add-container", "corp", f"ou=Staff,{base}")
    assert made.stdout.strip() == f"created ou=Staff,{base}"
    (tmp_path / "people.ldif").write_text(LDIF.replace(PEOPLE, f"ou=People,{base}"), encoding="utf-8")
    loaded = cli("directory", "import", "corp", str(tmp_path / "people.ldif"), ok=False)
    assert loaded.stdout.strip() == "added 4, modified 0, deleted 0, renamed 0, failed 2"
    server_export = cli("directory", "export", "corp", "--base", base, "-o", str(tmp_path / "corp.ldif"))
    assert "6 entries written" in server_export.stderr
    copied = cli("directory", "import", "dir", str(tmp_path / "corp.ldif"))
    assert copied.stdout.strip() == "added 6, modified 0, deleted 0, renamed 0, failed 0"
    again = cli("directory", "export", "dir", "--base", base).stdout
    assert records(again) == records((tmp_path / "corp.ldif").read_text()), "the same entries (in tree order)"
    people = cli("directory", "search", "corp", "--base", base, "--filter", "(&(uid=*)(ou:dn:=people))",
                 "--format", "json")
    assert {normalize_dn(e["dn"]) for e in json.loads(people.stdout)} == {
        normalize_dn(f"{rdn},ou=People,{base}") for rdn in ("cn=Doe\\, John+uid=jd", "uid=dup", "uid=ada")
    }
