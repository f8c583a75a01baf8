"""The ``idsync`` command as a user runs it: a subprocess with its own home folder."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SUFFIX = "dc=example,dc=org"

ME = pwd.getpwuid(os.getuid()).pw_name
"""The CLI acts as the operating-system account running it."""


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith("IDSYNC_")
        } | {"IDSYNC_HOME": str(home), "COLUMNS": "200"}

    def __call__(self, *args: str, input: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "idsync", *args],
            env=self.env, input=input, capture_output=True, text=True, timeout=120, check=False,
        )
        if ok:
            assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


JOB_YAML = """\
name: people
source: hr
destination: {store: dir, container: "ou=People,dc=example,dc=org"}
mappings:
  - {attribute: uid, from: id, key: true}
  - {attribute: cn, join: {fields: [first, last]}}
  - {attribute: sn, from: last}
actions: {on_missing: delete}
"""

OU_JOB_YAML = """\
name: ou
source: ous
destination:
  store: dir
  container: "dc=example,dc=org"
  scope: one
  object_type: custom
  object_classes: [top, organizationalUnit]
  rdn_attribute: ou
mappings:
  - {attribute: ou, from: ou, key: true}
"""


def setup_job(
    cli: Cli, tmp_path: Path, rows: str = "1,Ada,Lovelace\n2,Alan,Turing\n", container: bool = True
) -> Path:
    """A local store, the hr source and the people job; with *container*, also
    ou=People, made by a second job from a one-row source."""
    csv_path = tmp_path / "hr.csv"
    csv_path.write_text("id,first,last\n" + rows, encoding="utf-8")
    cli("store", "add", "dir", "--kind", "local", "--path", str(tmp_path / "dir.db"))
    cli("source", "add", "hr", "--path", str(csv_path))
    (tmp_path / "job.yaml").write_text(JOB_YAML, encoding="utf-8")
    cli("job", "create", "--from", str(tmp_path / "job.yaml"))
    if container:
        make_container(cli, tmp_path)
    return csv_path


def make_container(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ous.csv").write_text("ou\nPeople\n", encoding="utf-8")
    cli("source", "add", "ous", "--path", str(tmp_path / "ous.csv"))
    (tmp_path / "ou.yaml").write_text(OU_JOB_YAML, encoding="utf-8")
    cli("job", "create", "--from", str(tmp_path / "ou.yaml"))
    cli("job", "run", "ou")


def test_demo_creates_then_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    proc = cli("demo", "--workspace", str(tmp_path / "demo"), "--people", "150")
    assert "created 150 on the first run, changed 0 on the second" in proc.stdout
    assert "line " in proc.stdout  # broken rows are reported with their line
    # The approval flow: a request, a partial approval, exactly that applied, the trail and the messages.
    assert "run 3 awaiting approval: nothing written; request 1 raised for ada" in proc.stdout
    assert "ada        approve  leavers are removed after their exit interview" in proc.stdout
    assert "pending  to ada@example.org: request 1 awaiting" in proc.stdout
    assert "applied exactly what was approved: created 3, 2 deletes not approved and left undone" in proc.stdout
    explore = Cli(cli.home)
    explore.env |= {"IDSYNC_HOME": str(tmp_path / "demo"), "IDSYNC_DATABASE_URL": f"sqlite:///{tmp_path / 'demo' / 'idsync.db'}"}
    shown = explore.json("request", "show", "1")
    assert shown["request"]["state"] == "executed" and shown["request"]["requested_by"] == "demo-admin"
    assert explore("audit", "verify").returncode == 0
    # Running the demo again starts afresh in the same workspace.
    cli("demo", "--workspace", str(tmp_path / "demo"), "--people", "20")


def test_demo_refuses_a_folder_that_is_not_a_demo(cli: Cli, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    proc = cli("demo", "--workspace", str(precious), ok=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("idsync: error:") and "not a demo workspace" in proc.stderr
    assert (precious / "keep.txt").read_text() == "mine"


def test_preview_run_and_history(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, container=False)
    # The container does not exist yet: the run fails cleanly, with the cause recorded.
    run = cli("job", "run", "people", "--json", ok=False)
    assert run.returncode == 4
    data = json.loads(run.stdout)
    assert data["run"]["state"] == "failed"
    assert "ou=People,dc=example,dc=org" in data["run"]["error"] and "does not exist" in data["run"]["error"]
    make_container(cli, tmp_path)

    preview = cli.json("job", "preview", "people")
    plan_id = preview["plan"]["id"]
    assert preview["plan"]["counts"]["created"] == 2
    ldif = cli("plan", "export", str(plan_id), "--format", "ldif").stdout
    assert "changetype: add" in ldif and "dn: uid=1,ou=People,dc=example,dc=org" in ldif
    csv_text = cli("plan", "export", str(plan_id), "--format", "csv").stdout
    assert csv_text.splitlines()[0] == "op,dn,key,attribute,current,new"

    applied = cli.json("job", "run", "people", "--plan", str(plan_id))
    assert applied["run"]["state"] == "succeeded"
    assert applied["run"]["counts"]["created"] == 2
    again = cli("job", "run", "people", "--plan", str(plan_id), ok=False)
    assert again.returncode == 7 and f"plan {plan_id} is already applied by run {applied['run']['id']}" in again.stderr

    rerun = cli.json("job", "run", "people")
    assert rerun["run"]["counts"]["unchanged"] == 2 and rerun["run"]["counts"]["created"] == 0

    runs = cli.json("run", "list", "--job", "people")
    assert [r["state"] for r in runs] == ["succeeded", "succeeded", "failed"]
    shown = cli.json("run", "show", str(runs[-1]["id"]))
    assert "does not exist" in shown["run"]["error"]
    assert any(f"started by {ME}" in line["message"] for line in shown["log"])


def test_bad_rows_fail_alone_with_their_line(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, rows="1,Ada,Lovelace\n2,too,many,fields\n")
    report = cli("job", "preview", "people", "--json")
    data = json.loads(report.stdout)
    assert data["plan"]["counts"]["read"] == 2
    assert any(e["line"] == 3 and "expected 3 fields" in e["message"] for e in data["errors"])


def test_job_without_a_key_is_refused_in_one_line(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(JOB_YAML.replace("key: true", "key: false"), encoding="utf-8")
    proc = cli("job", "create", "--from", str(bad), ok=False)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1
    assert "has no key mapping" in proc.stderr


def test_apply_errors_name_file_line_and_field(cli: Cli, tmp_path: Path) -> None:
    defs = tmp_path / "defs.yaml"
    defs.write_text(
        "stores:\n  - name: dir\n    kind: local\n    path: d.db\n"
        "sources:\n  - name: hr\n    kind: csv\n    path: hr.csv\n    delimiter: ';;'\n",
        encoding="utf-8",
    )
    proc = cli("apply", "-f", str(defs), ok=False)
    assert proc.returncode == 1
    assert f"{defs}:9:" in proc.stderr and "delimiter" in proc.stderr
    assert cli.json("store", "list") == []  # nothing was saved


def test_export_then_apply_recreates_everything(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path)
    exported = cli("export").stdout
    target = tmp_path / "export.yaml"
    target.write_text(exported, encoding="utf-8")
    fresh = Cli(tmp_path / "fresh-home")
    fresh("apply", "-f", str(target))
    assert fresh("export").stdout == exported
    again = fresh.json("apply", "-f", str(target))
    assert {item["outcome"] for item in again} == {"unchanged"}


def test_secrets_are_never_shown_or_stored_in_clear(cli: Cli, tmp_path: Path) -> None:
    secret = "s3cr3t-Pa55word!"
    cli("store", "add", "corp", "--kind", "ldap", "--url", "ldap://127.0.0.1:9",
        "--bind-dn", f"cn=admin,{SUFFIX}", "--password-stdin", input=secret + "\n")
    outputs = [cli("store", "show", "corp").stdout, cli("export").stdout, cli("store", "list", "--json").stdout]
    audit = cli.json("audit", "list", "--kind", "store")
    assert audit[0]["action"] == "create" and audit[0]["actor"] == ME
    assert audit[0]["detail"]["secrets"] == "secrets changed"
    outputs.append(json.dumps(audit))
    assert all(secret not in out for out in outputs)
    for path in cli.home.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    key = cli.home / "secret.key"
    assert key.stat().st_mode & 0o077 == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_fails_the_run_cleanly(cli: Cli, tmp_path: Path) -> None:
    csv_path = tmp_path / "hr.csv"
    csv_path.write_text("id,first,last\n1,Ada,Lovelace\n", encoding="utf-8")
    cli("store", "add", "dir", "--kind", "ldap", "--url", f"ldap://127.0.0.1:{free_port()}")
    cli("source", "add", "hr", "--path", str(csv_path))
    (tmp_path / "job.yaml").write_text(JOB_YAML, encoding="utf-8")
    cli("job", "create", "--from", str(tmp_path / "job.yaml"))
    proc = cli("job", "run", "people", ok=False)
    assert proc.returncode == 4
    runs = cli.json("run", "list")
    assert runs[0]["state"] == "failed" and runs[0]["error"]
    test = cli("store", "test", "dir", ok=False)
    assert test.returncode == 1 and test.stderr.startswith("idsync: error:")


def test_every_command_has_help(cli: Cli) -> None:
    for args in (["--help"], ["store", "--help"], ["store", "add", "--help"], ["source", "add", "--help"],
                 ["job", "--help"], ["job", "preview", "--help"], ["job", "run", "--help"], ["run", "show", "--help"],
                 ["plan", "export", "--help"], ["apply", "--help"], ["export", "--help"], ["demo", "--help"],
                 ["db", "upgrade", "--help"], ["settings", "--help"], ["audit", "list", "--help"]):
        proc = cli(*args)
        assert "Usage" in proc.stdout


def test_the_cli_acts_as_its_os_account_whatever_the_environment_says(cli: Cli) -> None:
    cli.env |= {"IDSYNC_ACTOR": "mallory", "USER": "mallory", "LOGNAME": "mallory"}
    cli("store", "add", "corp", "--kind", "local")
    audit = cli.json("audit", "list", "--kind", "store")
    assert [entry["actor"] for entry in audit] == [ME]


def test_control_sequences_from_source_data_are_printed_escaped(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, rows="1,Ada\x1b]52;c;ZXZpbA==\x07,Lovelace\n")
    shown = cli("job", "preview", "people").stdout
    assert "\x1b" not in shown and "\x07" not in shown
    assert "Ada\\x1b]52;c;ZXZpbA==\\x07" in shown
