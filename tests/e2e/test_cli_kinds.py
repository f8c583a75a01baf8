"""``store add`` and ``source add`` refuse options the chosen kind does not
take, rather than saving a definition other than the one asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from idsync.domain.definitions import CsvSource, LocalStore
from idsync.domain.principals import Principal
from idsync.services import definitions
from idsync.services.workspace import Workspace
from tests.e2e.test_cli_collections import InProcess


@pytest.fixture
def run(tmp_path: Path) -> InProcess:
    return InProcess(tmp_path / "home")


@pytest.mark.parametrize(("args", "expected"), [
    (["store", "add", "d", "--kind", "local", "--active-directory"],
     "not taken by --kind local: --active-directory (ldap only)"),
    (["store", "add", "d", "--kind", "local", "--url", "ldap://h", "--start-tls"],
     "not taken by --kind local: --url (ldap only), --start-tls (ldap only)"),
    (["store", "add", "d", "--kind", "ldap", "--url", "ldap://h", "--path", "d.db"],
     "not taken by --kind ldap: --path (local only)"),
    (["store", "add", "d", "--kind", "ldap", "--url", "ldap://h", "--suffix", "dc=x"],
     "not taken by --kind ldap: --suffix (local only)"),
    (["source", "add", "s", "--kind", "excel", "--path", "a.xlsx", "--delimiter", ";"],
     "not taken by --kind excel: --delimiter (csv only)"),
    (["source", "add", "s", "--kind", "csv", "--path", "a.csv", "--sheet", "People"],
     "not taken by --kind csv: --sheet (excel only)"),
    (["source", "add", "s", "--kind", "sql", "--url", "sqlite:///a.db", "--table", "t", "--path", "a.csv"],
     "not taken by --kind sql: --path (csv or excel only)"),
    (["source", "add", "s", "--kind", "csv", "--path", "a.csv", "--password-env", "PW"],
     "not taken by --kind csv: --password-env (sql only)"),
])
def test_an_option_of_another_kind_is_a_usage_error(run: InProcess, args: list[str], expected: str) -> None:
    refused = run(*args, ok=False)
    assert refused.exit_code == 2
    assert expected in " ".join(refused.output.split())  # the error box may wrap the line
    assert run.json("store", "list") == [] and run.json("source", "list") == []


def test_defaults_still_apply_when_the_options_are_left_out(
    run: InProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    people = tmp_path / "people.csv"
    people.write_text("id,name\n1,Ada\n", encoding="utf-8")
    run("store", "add", "dir", "--kind", "local", "--path", str(tmp_path / "dir.db"))
    run("source", "add", "hr", "--kind", "csv", "--path", str(people))
    monkeypatch.setenv("IDSYNC_HOME", str(tmp_path / "home"))
    ws = Workspace(principal=Principal("tester"))
    try:
        (store,) = definitions.list_definitions(ws, "store")
        (source,) = definitions.list_definitions(ws, "source")
    finally:
        ws.close()
    assert isinstance(store, LocalStore) and store.suffix == "dc=example,dc=org"
    assert isinstance(source, CsvSource)
    assert (source.delimiter, source.quotechar, source.encoding, source.header) == (",", '"', "utf-8", True)


def test_an_unknown_kind_is_named_by_the_definitions_check(run: InProcess) -> None:
    refused = run("store", "add", "d", "--kind", "ldapx", "--url", "ldap://h", ok=False)
    assert refused.exit_code != 0 and "not taken by" not in refused.output
